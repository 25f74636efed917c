//! Example frames of every operation, snapshotted so that any change to the wire format shows as a diff.

use sluice_sandbox_protocol::*;

fn session() -> SessionKey {
    SessionKey {
        org: "acme".into(),
        key: "key_1".into(),
        session: "mcp-session-1".into(),
    }
}

fn request_examples() -> Vec<Request> {
    let s = session();
    vec![
        Request::Status,
        Request::OpenSession(OpenSession {
            session: s.clone(),
            workspace_bytes: Some(64 << 20),
        }),
        Request::CloseSession(SessionArgs { session: s.clone() }),
        Request::CancelRuns(SessionArgs { session: s.clone() }),
        Request::RunPython(RunPython {
            session: s.clone(),
            code: "import pandas as pd\nprint(pd.read_csv('orders.csv').total.sum())".into(),
            inputs: vec![InputFile {
                path: "orders.csv".into(),
                content: "id,total\n1,9.5\n".into(),
            }],
            timeout_ms: Some(30_000),
            memory_mb: Some(1024),
        }),
        Request::ListDirectory(PathArgs {
            session: s.clone(),
            path: ".".into(),
        }),
        Request::DirectoryTree(TreeArgs {
            session: s.clone(),
            path: "models".into(),
            max_depth: Some(3),
        }),
        Request::ReadFile(ReadFile {
            session: s.clone(),
            path: "out/report.md".into(),
            max_bytes: None,
        }),
        Request::WriteFile(WriteFile {
            session: s.clone(),
            path: "notes/a.txt".into(),
            content: "hello".into(),
            create_parents: true,
        }),
        Request::SearchFiles(SearchFiles {
            session: s.clone(),
            path: ".".into(),
            pattern: "**/*.sql".into(),
            max_results: Some(100),
        }),
        Request::GetFileInfo(PathArgs {
            session: s.clone(),
            path: "orders.csv".into(),
        }),
        Request::CreateDirectory(PathArgs {
            session: s.clone(),
            path: "out/charts".into(),
        }),
        Request::MoveFile(MoveFile {
            session: s,
            source: "a.txt".into(),
            destination: "b/a.txt".into(),
        }),
    ]
}

fn response_examples() -> Vec<ResponseBody> {
    let info = FileInfo {
        path: "out/report.md".into(),
        kind: FileKind::File,
        size: 12,
        mode: 0o644,
        modified_ms: 1_767_225_600_000,
    };
    vec![
        ResponseBody::Ok(Response::Status(StatusInfo {
            version: "0.1.0".into(),
            protocol: PROTOCOL_VERSION,
            backend: Backend::Native,
            degraded: false,
            protections: vec![
                Protection {
                    name: "landlock".into(),
                    state: ProtectionState::Active,
                    required: true,
                    detail: "ABI 7, fully enforced".into(),
                },
                Protection {
                    name: "cgroup_limits".into(),
                    state: ProtectionState::Missing,
                    required: false,
                    detail: "no delegated cgroup v2 subtree and no writable cgroup v1 hierarchy".into(),
                },
            ],
            capacity: Capacity {
                max_concurrency: 2,
                running: 1,
                sessions: 3,
                max_sessions: 64,
            },
            python: "3.11.2".into(),
        })),
        ResponseBody::Ok(Response::OpenSession(SessionInfo {
            created: true,
            workspace_bytes: 64 << 20,
        })),
        ResponseBody::Ok(Response::CloseSession(SessionClosed { existed: true })),
        ResponseBody::Ok(Response::CancelRuns(RunsCancelled { existed: true })),
        ResponseBody::Ok(Response::RunPython(RunResult {
            exit: ExitStatus {
                code: Some(0),
                signal: None,
            },
            stdout: Output {
                text: "9.5\n".into(),
                truncated: false,
                total_bytes: 4,
            },
            stderr: Output {
                text: String::new(),
                truncated: false,
                total_bytes: 0,
            },
            files: vec![
                ProducedFile {
                    path: "outputs/big.png".into(),
                    size: 3 << 20,
                    change: Change::Created,
                },
                ProducedFile {
                    path: "outputs/broken.svg".into(),
                    size: 20,
                    change: Change::Created,
                },
                ProducedFile {
                    path: "outputs/chart.png".into(),
                    size: 8,
                    change: Change::Created,
                },
                ProducedFile {
                    path: "outputs/chart.svg".into(),
                    size: 900,
                    change: Change::Created,
                },
            ],
            duration_ms: 12.5,
            backend: Backend::Native,
            limits_hit: vec![],
            images: vec![
                Image {
                    path: "outputs/chart.png".into(),
                    mime: ImageMime::Png,
                    data: Bytes(b"\x89PNG\r\n\x1a\n".to_vec()),
                    rendered_from_svg: None,
                },
                Image {
                    path: "outputs/chart.svg".into(),
                    mime: ImageMime::Png,
                    data: Bytes(b"\x89PNG\r\n\x1a\n".to_vec()),
                    rendered_from_svg: Some(SvgRendering {
                        width: 614,
                        height: 460,
                        text_left_out: false,
                    }),
                },
            ],
            images_left_out: vec![ImageLeftOut {
                path: "outputs/big.png".into(),
                mime: ImageMime::Png,
                size: 3 << 20,
                cap: ImageCap::PerImage,
                cap_bytes: 1 << 20,
            }],
            images_not_rendered: vec![ImageNotRendered {
                path: "outputs/broken.svg".into(),
                size: 20,
                reason: "the SVG cannot be parsed: the document has no root element".into(),
            }],
        })),
        ResponseBody::Ok(Response::ListDirectory(Listing {
            path: ".".into(),
            entries: vec![
                DirEntry {
                    name: "orders.csv".into(),
                    kind: FileKind::File,
                    size: 16,
                },
                DirEntry {
                    name: "out".into(),
                    kind: FileKind::Directory,
                    size: 60,
                },
            ],
            truncated: false,
        })),
        ResponseBody::Ok(Response::DirectoryTree(Tree {
            root: TreeNode {
                name: "models".into(),
                kind: FileKind::Directory,
                children: vec![TreeNode {
                    name: "a.sql".into(),
                    kind: FileKind::File,
                    children: vec![],
                }],
            },
            truncated: false,
        })),
        ResponseBody::Ok(Response::ReadFile(FileContent {
            path: "out/report.md".into(),
            content: "# Report\n".into(),
            size: 9,
            truncated: false,
        })),
        ResponseBody::Ok(Response::SearchFiles(SearchResult {
            matches: vec!["models/a.sql".into()],
            truncated: false,
        })),
        ResponseBody::Ok(Response::GetFileInfo(info)),
        ResponseBody::Error(ErrorInfo {
            kind: ErrorKind::Busy,
            message: "sandbox busy: all 2 execution slots stayed taken for 5s; retry later".into(),
        }),
        ResponseBody::Error(ErrorInfo {
            kind: ErrorKind::PathOutsideWorkspace,
            message: "path \"../etc/passwd\" leaves the workspace".into(),
        }),
    ]
}

#[test]
fn request_frames() {
    let frames: Vec<_> = request_examples()
        .into_iter()
        .enumerate()
        .map(|(i, request)| RequestFrame {
            v: PROTOCOL_VERSION,
            id: i as u64 + 1,
            request,
        })
        .collect();
    insta::assert_json_snapshot!(frames);
}

#[test]
fn response_frames() {
    let frames: Vec<_> = response_examples()
        .into_iter()
        .enumerate()
        .map(|(i, body)| ResponseFrame {
            v: PROTOCOL_VERSION,
            id: i as u64 + 1,
            body,
        })
        .collect();
    insta::assert_json_snapshot!(frames);
}

#[test]
fn every_example_round_trips() {
    for (i, request) in request_examples().into_iter().enumerate() {
        let frame = RequestFrame {
            v: PROTOCOL_VERSION,
            id: i as u64,
            request,
        };
        let bytes = encode(&frame).unwrap();
        assert_eq!(decode_request(&bytes[4..]).unwrap(), frame);
    }
    for (i, body) in response_examples().into_iter().enumerate() {
        let frame = ResponseFrame {
            v: PROTOCOL_VERSION,
            id: i as u64,
            body,
        };
        let bytes = encode(&frame).unwrap();
        assert_eq!(decode_response(&bytes[4..]).unwrap(), frame);
    }
}

/// A daemon from before images answers without `images`; a newer one may add fields an older gateway does
/// not know. Both read, so the two can be upgraded one at a time.
#[test]
fn run_results_without_images_and_with_unknown_fields_decode() {
    let old = r#"{"v":1,"id":3,"ok":{"op":"run_python","result":{"exit":{"code":0},
        "stdout":{"text":"1\n","truncated":false,"total_bytes":2},
        "stderr":{"text":"","truncated":false,"total_bytes":0},
        "files":[],"duration_ms":1.5,"backend":"native","limits_hit":[],"some_future_field":[1]}}}"#;
    let frame = decode_response(old.as_bytes()).unwrap();
    let ResponseBody::Ok(Response::RunPython(r)) = frame.body else {
        panic!("{frame:?}")
    };
    assert_eq!(r.stdout.text, "1\n");
    assert!(r.images.is_empty() && r.images_left_out.is_empty());
}
