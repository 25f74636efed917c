//! Framing and decoding: sizes, truncation, versions and malformed bodies, blocking and async.

use pretty_assertions::assert_eq;
use sluice_sandbox_protocol::*;

fn frame_bytes(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[test]
fn reads_frames_back_to_back_then_clean_eof() {
    let mut data = frame_bytes(b"{\"a\":1}");
    data.extend(frame_bytes(b"[]"));
    let mut r = &data[..];
    assert_eq!(read_frame(&mut r, 100).unwrap().unwrap(), b"{\"a\":1}");
    assert_eq!(read_frame(&mut r, 100).unwrap().unwrap(), b"[]");
    assert!(read_frame(&mut r, 100).unwrap().is_none());
}

#[test]
fn framing_errors() {
    // (input, expected error text)
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0, 0], "connection closed in the middle of a frame"),
        (
            frame_bytes(b"{}")[..4].to_vec(),
            "connection closed in the middle of a frame",
        ),
        (
            (1000u32).to_be_bytes().to_vec(),
            "frame of 1000 bytes exceeds the maximum of 100 bytes",
        ),
        (
            u32::MAX.to_be_bytes().to_vec(),
            "frame of 4294967295 bytes exceeds the maximum of 100 bytes",
        ),
    ];
    for (input, expected) in cases {
        let err = read_frame(&mut &input[..], 100).unwrap_err();
        assert_eq!(err.to_string(), expected, "input {input:?}");
    }
}

#[test]
fn writer_refuses_oversized_bodies() {
    let big = "x".repeat(200);
    let err = write_frame(&mut Vec::new(), &big, 100).unwrap_err();
    assert!(
        matches!(err, FrameError::TooLarge { len: 202, max: 100 }),
        "{err}"
    );
}

#[test]
fn decode_errors_are_typed() {
    // (body, expected kind, expected id, message fragment)
    let cases: Vec<(&str, ErrorKind, Option<u64>, &str)> = vec![
        ("not json", ErrorKind::Malformed, None, "not a JSON object"),
        ("[1,2]", ErrorKind::Malformed, None, "not a JSON object"),
        (
            r#"{"id":3,"op":"status"}"#,
            ErrorKind::Malformed,
            Some(3),
            "no protocol version",
        ),
        (
            r#"{"v":2,"id":4,"op":"status"}"#,
            ErrorKind::UnsupportedVersion,
            Some(4),
            "version 2 is not supported",
        ),
        (
            r#"{"v":1,"id":5,"op":"launch_missiles"}"#,
            ErrorKind::Malformed,
            Some(5),
            "unknown variant",
        ),
        (
            r#"{"v":1,"id":6,"op":"read_file","args":{"path":"a"}}"#,
            ErrorKind::Malformed,
            Some(6),
            "missing field",
        ),
        (
            r#"{"v":1,"op":"status"}"#,
            ErrorKind::Malformed,
            None,
            "missing field `id`",
        ),
    ];
    for (body, kind, id, fragment) in cases {
        let err = decode_request(body.as_bytes()).unwrap_err();
        assert_eq!((err.kind, err.id), (kind, id), "body {body}");
        assert!(err.message.contains(fragment), "body {body}: {}", err.message);
    }
}

#[test]
fn status_request_wire_form() {
    let frame = decode_request(br#"{"v":1,"id":9,"op":"status"}"#).unwrap();
    assert_eq!(
        frame,
        RequestFrame {
            v: 1,
            id: 9,
            request: Request::Status
        }
    );
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_round_trip_and_limits() {
    let (mut a, mut b) = tokio::io::duplex(1 << 16);
    let frame = RequestFrame {
        v: PROTOCOL_VERSION,
        id: 1,
        request: Request::Status,
    };
    write_frame_async(&mut a, &frame, 1000).await.unwrap();
    let body = read_frame_async(&mut b, 1000).await.unwrap().unwrap();
    assert_eq!(decode_request(&body).unwrap(), frame);

    write_frame_async(&mut a, &frame, 1000).await.unwrap();
    let err = read_frame_async(&mut b, 5).await.unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { max: 5, .. }), "{err}");

    drop(a);
    let mut rest = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut b, &mut rest)
        .await
        .unwrap();
    let (mut c, mut d) = tokio::io::duplex(64);
    tokio::io::AsyncWriteExt::write_all(&mut c, &[0, 0, 0, 9, b'{'])
        .await
        .unwrap();
    drop(c);
    assert!(matches!(
        read_frame_async(&mut d, 100).await.unwrap_err(),
        FrameError::Truncated
    ));
}
