//! Tests of the configuration file: parsing, defaults, and the errors a bad file gets.

use super::*;
use pretty_assertions::assert_eq;

pub(super) fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// What resolving a config file holding `text` refuses it with.
pub(super) fn refusal(text: &str) -> String {
    let (_dir, path) = write(text);
    Settings::resolve(Overrides {
        config: Some(path),
        ..Default::default()
    })
    .unwrap_err()
    .to_string()
}

#[test]
fn defaults() {
    let s = Settings::resolve(Overrides::default()).unwrap();
    assert_eq!(s.listen, "127.0.0.1:3300");
    assert_eq!(s.max_rows, 10_000);
    assert_eq!(s.data_dir, PathBuf::from(".sluice"));
    assert!(s.audit_strict && !s.stateless);
}

#[test]
fn flags_beat_file() {
    let (_dir, path) = write("[server]\nlisten = \"127.0.0.1:4000\"\n[limits]\nmax_rows = 50\n");
    let s = Settings::resolve(Overrides {
        config: Some(path.clone()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!((s.listen.as_str(), s.max_rows), ("127.0.0.1:4000", 50));
    let s = Settings::resolve(Overrides {
        config: Some(path),
        listen: Some("127.0.0.1:5000".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!((s.listen.as_str(), s.max_rows), ("127.0.0.1:5000", 50));
}

#[test]
fn connection_policies_are_read_and_typos_refused() {
    let (_dir, path) = write(
        "[[connections]]\nname='a'\nkind='duckdb'\ndsn='x'\n[connections.policy]\ndenied_tables = ['hr.salaries']\n",
    );
    let s = Settings::resolve(Overrides {
        config: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        s.connections[0].policy.denied_tables,
        vec!["hr.salaries".to_owned()]
    );
    // A misspelt policy key must not silently leave a table unprotected.
    let err = refusal(
        "[[connections]]\nname='a'\nkind='duckdb'\ndsn='x'\n[connections.policy]\ndenied_table = ['hr.salaries']\n",
    );
    assert!(err.contains("unknown field `denied_table`"), "{err}");
}

#[test]
fn dbt_binary_and_parse_timeout() {
    let s = Settings::resolve(Overrides::default()).unwrap();
    assert_eq!(s.dbt_binary, None);
    assert_eq!(s.dbt_parse_timeout, Duration::from_secs(120));
    let (dir, path) = write("[dbt]\nbinary = 'venv/bin/dbt'\nparse_timeout_secs = 5\n");
    let s = Settings::resolve(Overrides {
        config: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.dbt_binary, Some(dir.path().join("venv/bin/dbt")));
    assert_eq!(s.dbt_parse_timeout, Duration::from_secs(5));
    for (text, expected) in [
        (
            "[dbt]\nbinary = '/opt/dbt/bin/dbt'\n",
            PathBuf::from("/opt/dbt/bin/dbt"),
        ),
        ("[dbt]\nbinary = 'dbt'\n", PathBuf::from("dbt")),
    ] {
        let (_dir, path) = write(text);
        let s = Settings::resolve(Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.dbt_binary, Some(expected));
    }
    for (text, expected) in [
        (
            "[dbt]\nparse_timeout_secs = 0\n",
            "parse_timeout_secs must be at least 1",
        ),
        ("[dbt]\nbinary = ''\n", "[dbt] binary is empty"),
        ("[dbt]\nbinary = 3\n", "invalid type"),
        ("[dbt]\nparse_timeout = 3\n", "unknown field `parse_timeout`"),
    ] {
        let err = refusal(text);
        assert!(err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn session_idle_time_is_configurable_and_never_zero() {
    let s = Settings::resolve(Overrides::default()).unwrap();
    assert_eq!(s.session_idle, Duration::from_secs(DEFAULT_SESSION_IDLE_SECS));
    let (_dir, path) = write("[server]\nsession_idle_secs = 60\n");
    let s = Settings::resolve(Overrides {
        config: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.session_idle, Duration::from_secs(60));
    let err = refusal("[server]\nsession_idle_secs = 0\n");
    assert!(
        err.contains("[server] session_idle_secs must be at least 1"),
        "{err}"
    );
}

#[test]
fn bad_files_say_why() {
    let err = refusal("[server]\nlisen = \"x\"\n");
    assert!(err.contains("unknown field `lisen`"), "{err}");
    let err = refusal(
        "[[connections]]\nname='a'\nkind='duckdb'\ndsn='x'\n[[connections]]\nname='a'\nkind='duckdb'\ndsn='y'\n",
    );
    assert!(err.contains("defined twice"), "{err}");
    let err = Settings::resolve(Overrides {
        listen: Some("nope".into()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("not host:port"), "{err}");
}
