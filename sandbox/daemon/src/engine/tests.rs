//! Table-driven tests of the engine's pure parts.

use sluice_sandbox_protocol::{Change, ExitStatus, Output, ProducedFile};

use super::output::exit_status;
use super::*;
use crate::workspace::Snapshot;
use pretty_assertions::assert_eq;

#[test]
fn capture_caps_and_counts() {
    // (chunks, cap, expected text, truncated, total)
    let cases: Vec<(Vec<&str>, usize, &str, bool, u64)> = vec![
        (vec!["ab", "cd"], 10, "abcd", false, 4),
        (vec!["abc", "def"], 4, "abcd", true, 6),
        (vec!["abcd"], 4, "abcd", false, 4),
        (vec![], 4, "", false, 0),
    ];
    for (chunks, cap, text, truncated, total) in cases {
        let mut c = Capture::new(cap);
        for ch in &chunks {
            c.push(ch.as_bytes());
        }
        assert_eq!(
            c.finish(),
            Output {
                text: text.into(),
                truncated,
                total_bytes: total
            },
            "{chunks:?}"
        );
    }
}

#[test]
fn exits_as_the_protocol_says_them() {
    use sluice_sandbox_jail::End;
    // (how PID 1 ended, the protocol's exit status)
    let cases = [
        (End::Code(3), (Some(3), None)),
        (End::Code(0), (Some(0), None)),
        (End::Signal(9), (None, Some(9))),
    ];
    for (end, (code, signal)) in cases {
        assert_eq!(exit_status(end), ExitStatus { code, signal }, "{end:?}");
    }
}

#[test]
fn produced_files() {
    let before: Snapshot = [("a".to_string(), (1, 10)), ("b".to_string(), (2, 20))].into();
    let after: Snapshot = [
        ("a".to_string(), (1, 10)),
        ("b".to_string(), (3, 21)),
        ("c".to_string(), (5, 30)),
    ]
    .into();
    assert_eq!(
        produced(&before, &after),
        vec![
            ProducedFile {
                path: "b".into(),
                size: 3,
                change: Change::Modified
            },
            ProducedFile {
                path: "c".into(),
                size: 5,
                change: Change::Created
            },
        ]
    );
}
