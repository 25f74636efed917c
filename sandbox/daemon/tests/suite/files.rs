//! Symlink and `..` tricks through the workspace file operations, with symlinks planted by sandboxed code.

use pretty_assertions::assert_eq;
use sluice_sandbox_protocol::*;

use super::harness::*;

fn kind(r: Result<Response, ClientError>) -> Result<&'static str, ErrorKind> {
    match r {
        Ok(resp) => Ok(match resp {
            Response::ReadFile(_) => "read",
            Response::WriteFile(_) => "written",
            Response::ListDirectory(_) => "listed",
            Response::MoveFile(_) => "moved",
            Response::CreateDirectory(_) => "created",
            Response::GetFileInfo(_) => "info",
            Response::SearchFiles(_) => "searched",
            Response::DirectoryTree(_) => "tree",
            _ => "other",
        }),
        Err(e) => Err(e.kind().unwrap_or(ErrorKind::Internal)),
    }
}

#[test]
fn file_operations_stay_inside_the_workspace() {
    for backend in backends() {
        eprintln!("backend: {backend:?}");
        let d = Daemon::start_backend(backend, &[]);
        let mut c = d.client();
        let s = session("fs");
        open(&mut c, &s);
        // Sandboxed code plants links pointing out of the workspace (to host paths the daemon can read).
        let host_file = d.dir.path().join("host-secret.txt");
        std::fs::write(&host_file, "secret").unwrap();
        let host_dir = d.dir.path().display().to_string();
        let r = run(
            &mut c,
            &s,
            &format!(
                "import os\nos.symlink({:?}, 'abs')\nos.symlink('../../../../../../../../etc/passwd', 'rel')\n\
                 os.symlink({host_dir:?}, 'dirlink')\nos.symlink('/proc/self/root', 'magic')\nos.mkdir('sub')\n\
                 os.symlink('..', 'sub/up')\nos.symlink('../..', 'sub/upup')\nopen('ok.txt','w').write('ok')\nos.symlink('ok.txt', 'inside')\nprint('planted')",
                host_file.display().to_string()
            ),
            None,
        );
        assert_eq!(r.stdout.text, "planted\n", "{r:?}");
        let sess = || s.clone();
        let read = |p: &str| {
            Request::ReadFile(ReadFile {
                session: sess(),
                path: p.into(),
                max_bytes: None,
            })
        };
        let write = |p: &str| {
            Request::WriteFile(WriteFile {
                session: sess(),
                path: p.into(),
                content: "pwn".into(),
                create_parents: true,
            })
        };
        let list = |p: &str| {
            Request::ListDirectory(PathArgs {
                session: sess(),
                path: p.into(),
            })
        };
        let mkdir = |p: &str| {
            Request::CreateDirectory(PathArgs {
                session: sess(),
                path: p.into(),
            })
        };
        let mv = |a: &str, b: &str| {
            Request::MoveFile(MoveFile {
                session: sess(),
                source: a.into(),
                destination: b.into(),
            })
        };
        let outside = Err(ErrorKind::PathOutsideWorkspace);
        let cases: Vec<(&str, Request, Result<&str, ErrorKind>)> = vec![
            ("absolute path", read("/etc/passwd"), outside),
            ("dot-dot", read("../root/ws"), outside),
            ("dot-dot inside", read("sub/../ok.txt"), outside),
            ("absolute symlink", read("abs"), outside),
            ("relative symlink out", read("rel"), outside),
            (
                "through a symlinked dir",
                read("dirlink/host-secret.txt"),
                outside,
            ),
            ("magic link", read("magic/etc/passwd"), outside),
            (
                "symlink to parent, staying inside",
                read("sub/up/ok.txt"),
                Ok("read"),
            ),
            ("symlink to grandparent", read("sub/upup/etc/passwd"), outside),
            (
                "write through a symlinked dir",
                write("dirlink/evil.txt"),
                outside,
            ),
            ("write over a symlink out", write("abs"), outside),
            ("mkdir through a symlinked dir", mkdir("dirlink/newdir"), outside),
            ("list through a symlinked dir", list("dirlink"), outside),
            (
                "move into a symlinked dir",
                mv("ok.txt", "dirlink/stolen.txt"),
                outside,
            ),
            (
                "move from outside",
                mv("dirlink/host-secret.txt", "mine.txt"),
                outside,
            ),
            ("symlink inside is fine", read("inside"), Ok("read")),
            ("list root", list("."), Ok("listed")),
            ("missing file", read("nope.txt"), Err(ErrorKind::NotFound)),
            ("read a directory", read("sub"), Err(ErrorKind::IsADirectory)),
            (
                "write the root",
                Request::WriteFile(WriteFile {
                    session: sess(),
                    path: ".".into(),
                    content: "x".into(),
                    create_parents: false,
                }),
                Err(ErrorKind::IsADirectory),
            ),
            (
                "fill most of the workspace",
                Request::WriteFile(WriteFile {
                    session: sess(),
                    path: "fill.bin".into(),
                    content: vec![0u8; 20 << 20].into(),
                    create_parents: false,
                }),
                Ok("written"),
            ),
            (
                "workspace full",
                Request::WriteFile(WriteFile {
                    session: sess(),
                    path: "big.bin".into(),
                    content: vec![0u8; 20 << 20].into(),
                    create_parents: false,
                }),
                Err(ErrorKind::NoSpace),
            ),
            (
                "unknown session",
                Request::ReadFile(ReadFile {
                    session: session("nobody-opened-this"),
                    path: "ok.txt".into(),
                    max_bytes: None,
                }),
                Err(ErrorKind::UnknownSession),
            ),
        ];
        let mut failures = Vec::new();
        for (name, req, expected) in cases {
            let got = kind(c.call(req));
            if got != expected {
                failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // Nothing was written or moved on the host.
        assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "secret");
        for p in ["evil.txt", "newdir", "stolen.txt"] {
            assert!(
                !d.dir.path().join(p).exists(),
                "{p} was created outside the workspace"
            );
        }
        let r = run(
            &mut c,
            &s,
            "import os\nos.remove('fill.bin')\nprint(os.path.exists('big.bin'))",
            None,
        );
        assert_eq!(
            r.stdout.text, "True\n",
            "the failed write leaves a partial file: {r:?}"
        );
        // The ordinary operations work and agree with what code sees.
        c.call(Request::CreateDirectory(PathArgs {
            session: sess(),
            path: "out/charts".into(),
        }))
        .unwrap();
        c.call(Request::WriteFile(WriteFile {
            session: sess(),
            path: "out/charts/a.sql".into(),
            content: "select 1".into(),
            create_parents: false,
        }))
        .unwrap();
        c.call(Request::MoveFile(MoveFile {
            session: sess(),
            source: "out/charts/a.sql".into(),
            destination: "out/b.sql".into(),
        }))
        .unwrap();
        let Response::SearchFiles(found) = c
            .call(Request::SearchFiles(SearchFiles {
                session: sess(),
                path: ".".into(),
                pattern: "*.sql".into(),
                max_results: None,
            }))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(found.matches, vec!["out/b.sql"]);
        let Response::GetFileInfo(info) = c
            .call(Request::GetFileInfo(PathArgs {
                session: sess(),
                path: "abs".into(),
            }))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(info.kind, FileKind::Symlink);
        let Response::DirectoryTree(tree) = c
            .call(Request::DirectoryTree(TreeArgs {
                session: sess(),
                path: "out".into(),
                max_depth: None,
            }))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            tree.root
                .children
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            vec!["b.sql", "charts"]
        );
        let r = run(&mut c, &s, "print(open('out/b.sql').read())", None);
        assert_eq!(r.stdout.text, "select 1\n");
        d.assert_serving();
    }
}
