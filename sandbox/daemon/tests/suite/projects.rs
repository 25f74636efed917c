//! Project directories mounted at `/projects/NAME`: read-only really is, read-write is shared on
//! purpose, and neither is a way out (symlinks, `..`, remounts, hard links), on every backend.

use std::os::unix::fs::PermissionsExt;

use pretty_assertions::assert_eq;

use super::harness::*;

/// Runs each snippet in one session and returns the stdout lines.
fn outputs(d: &Daemon, snippets: &[&str]) -> Vec<String> {
    let mut c = d.client();
    let s = session("projects");
    open(&mut c, &s);
    let prelude = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        def attempt(f):\n    try:\n        print('ALLOWED', f())\n    except BaseException as e:\n        print(type(e).__name__, getattr(e, 'errno', None))\n\
        def write(p, t='x'):\n    with open(p, 'w') as f:\n        return f.write(t)\n";
    snippets
        .iter()
        .map(|code| {
            let r = run(&mut c, &s, &format!("{prelude}{code}"), Some(20_000));
            assert!(r.stderr.text.is_empty(), "{code}: {r:?}");
            r.stdout.text.trim_end().to_string()
        })
        .collect()
}

#[test]
fn project_mounts_are_confined() {
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let host = tempfile::tempdir().unwrap();
        std::fs::set_permissions(host.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (ro, rw) = (host.path().join("dbt"), host.path().join("out"));
        std::fs::create_dir(&ro).unwrap();
        std::fs::create_dir(&rw).unwrap();
        std::fs::write(ro.join("model.sql"), "select 1").unwrap();
        std::fs::write(host.path().join("secret.txt"), "next to the project").unwrap();
        std::os::unix::fs::symlink("/etc", ro.join("abs_out")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", ro.join("rel_out")).unwrap();
        if is_root() {
            nix::unistd::chown(&rw, Some(SANDBOX_UID.into()), Some(SANDBOX_UID.into())).unwrap();
        }
        let ro_arg = format!("dbt={}:ro", ro.display());
        let rw_arg = format!("out={}:rw", rw.display());
        let d = Daemon::start_backend(kind, &["--project", &ro_arg, "--project", &rw_arg]);
        let got = outputs(
            &d,
            &[
                "print(open('/projects/dbt/model.sql').read())",
                "attempt(lambda: write('/projects/dbt/new.sql'))",
                "attempt(lambda: write('/projects/dbt/model.sql'))",
                "attempt(lambda: os.remove('/projects/dbt/model.sql'))",
                "attempt(lambda: open('/projects/dbt/abs_out/shadow').read())",
                "attempt(lambda: open('/projects/dbt/rel_out').read())",
                "attempt(lambda: open('/projects/dbt/../secret.txt').read())",
                "print(libc.mount(None, b'/projects/dbt', None, 32 | 4096, None), ctypes.get_errno())",
                "attempt(lambda: os.link('/projects/dbt/model.sql', '/workspace/stolen'))",
                "attempt(lambda: write('/projects/out/result.csv', 'a,b'))",
            ],
        );
        let (read_only, remove) = match kind {
            Kind::Native => ("OSError 30", "OSError 30"),
            // The host's files belong to a uid gVisor does not map: refused before the read-only check.
            Kind::Gvisor => ("PermissionError 13", "PermissionError 13"),
        };
        assert_eq!(
            got,
            vec![
                "select 1",
                read_only,
                read_only,
                remove,
                "FileNotFoundError 2",
                "FileNotFoundError 2",
                "FileNotFoundError 2",
                "-1 1",
                "OSError 18",
                "ALLOWED 3",
            ],
            "{kind:?}"
        );
        // On the host: the read-only project is untouched, the read-write one got the file.
        let mut names: Vec<String> = std::fs::read_dir(&ro)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["abs_out", "model.sql", "rel_out"]);
        assert_eq!(std::fs::read_to_string(ro.join("model.sql")).unwrap(), "select 1");
        assert_eq!(std::fs::read_to_string(rw.join("result.csv")).unwrap(), "a,b");
        d.assert_serving();
    }
}

#[test]
fn a_project_that_is_not_a_directory_stops_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice-sandbox"))
        .args(["doctor", "--backend", "native", "--root"])
        .arg(dir.path().join("root"))
        .arg("--project")
        .arg(format!("p={}", file.display()))
        .args(if is_root() { vec!["--uid", "65534"] } else { vec![] })
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a directory this daemon can reach"), "{err}");
}
