//! Runs the operator's `dbt parse` before `dbt_project_validate` reads a project's artifacts, so the
//! manifest reflects the project's current files.
//!
//! dbt is run only when the operator configured its binary (`[dbt] binary`), because parsing executes the
//! project's Jinja and macros on the host. The child gets no shell, no stdin, an environment cut down to
//! `PATH`, `HOME`, `LANG` and the operator's `DBT_*` variables, its own process group (so a timeout kills
//! everything it started, not just the leader), and output capture that keeps only the tail.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::task::JoinHandle;

/// Bytes of combined stdout and stderr kept (the end of the output, where dbt puts its errors).
const TAIL_BYTES: usize = 64 * 1024;
/// Lines of that tail reported back.
const TAIL_LINES: usize = 40;
/// Characters kept of one reported line.
const LINE_CHARS: usize = 400;
/// How long the output pipes may stay open after dbt exits before whatever still holds them is killed.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// One `dbt parse` to run.
#[derive(Clone, Debug)]
pub struct ParseCommand {
    /// The dbt executable: a path, or a bare name looked up on `PATH`.
    pub binary: PathBuf,
    /// The project directory (holding `dbt_project.yml`); also the child's working directory, so relative
    /// paths in `profiles.yml` mean what they mean when the user runs dbt there.
    pub project_dir: PathBuf,
    /// Given as `--profiles-dir` (the project's own directory when it has a `profiles.yml`).
    pub profiles_dir: Option<PathBuf>,
    /// Given as `--target-path`: where the analysis will read the manifest.
    pub target_path: PathBuf,
    /// Given as `--log-path`, so a `log-path` in `dbt_project.yml` cannot have dbt write outside the project.
    pub log_path: PathBuf,
    pub timeout: Duration,
}

impl ParseCommand {
    /// The arguments after the binary.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "parse".into(),
            "--project-dir".into(),
            self.project_dir.clone().into(),
        ];
        if let Some(p) = &self.profiles_dir {
            args.push("--profiles-dir".into());
            args.push(p.clone().into());
        }
        args.push("--target-path".into());
        args.push(self.target_path.clone().into());
        args.push("--log-path".into());
        args.push(self.log_path.clone().into());
        args
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseStatus {
    Succeeded,
    /// dbt exited non-zero (or was killed by a signal).
    Failed,
    /// Still running at the timeout; its process group was killed.
    TimedOut,
}

impl ParseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ParseStatus::Succeeded => "succeeded",
            ParseStatus::Failed => "failed",
            ParseStatus::TimedOut => "timed_out",
        }
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct ParseRun {
    pub status: ParseStatus,
    /// None when killed by a signal (including at the timeout).
    pub exit_code: Option<i32>,
    pub duration: Duration,
    /// The last lines of stdout and stderr together, colour codes removed.
    pub output_tail: Vec<String>,
}

/// dbt could not be started at all: a configuration problem for the operator, not a project problem.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(
        "the configured dbt binary {} does not exist (set `binary` under [dbt] in the config to the dbt \
         executable, e.g. the one in your dbt virtual environment)", binary.display()
    )]
    NotFound { binary: PathBuf },
    #[error("the configured dbt binary {} cannot be executed: {source}", binary.display())]
    NotExecutable { binary: PathBuf, source: std::io::Error },
    #[error("dbt parse could not be started with {}: {source}", binary.display())]
    Spawn { binary: PathBuf, source: std::io::Error },
    #[error("waiting for dbt parse failed: {0}")]
    Wait(std::io::Error),
}

/// The child's environment: `PATH`, `HOME`, `LANG` and every `DBT_*` variable from `vars` (the
/// gateway's own environment, as the operator set it), plus quiet defaults the operator may override:
/// no usage statistics sent from a server, no colour codes in captured output.
pub fn child_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vars
        .into_iter()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            matches!(k.as_ref(), "PATH" | "HOME" | "LANG") || k.starts_with("DBT_")
        })
        .collect();
    for (key, value) in [
        ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
        ("DBT_USE_COLORS", "false"),
    ] {
        if !env.iter().any(|(k, _)| k == key) {
            env.push((key.into(), value.into()));
        }
    }
    env.sort();
    env
}

/// One `dbt parse` per project directory at a time: two concurrent validations would otherwise write the
/// same target directory at once.
async fn project_lock(dir: &Path) -> tokio::sync::OwnedMutexGuard<()> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let lock = {
        let mut locks = LOCKS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(dir.to_path_buf()).or_default())
    };
    lock.lock_owned().await
}

/// Kills the child's whole process group when dropped while armed: at the timeout, and when the call is
/// cancelled mid-run. Disarmed once the leader has been reaped, after which its id may be reused.
struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&self) {
        if let Some(pgid) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `dbt parse` and waits for it, at most `cmd.timeout`. A non-zero exit or a timeout is a
/// [`ParseRun`] (the caller reports it and validates what artifacts exist); only a dbt that cannot be
/// started is an error.
pub async fn run(cmd: &ParseCommand) -> Result<ParseRun, ParseError> {
    let _serialised = project_lock(&cmd.project_dir).await;
    let mut command = Command::new(&cmd.binary);
    command
        .args(cmd.args())
        .current_dir(&cmd.project_dir)
        .env_clear()
        .envs(child_env(std::env::vars_os()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|source| spawn_error(&cmd.binary, source))?;
    let mut group = GroupKill(child.id().and_then(|id| i32::try_from(id).ok()));
    let tail = Arc::new(Mutex::new(Tail::default()));
    let readers: Vec<JoinHandle<()>> = [
        child.stdout.take().map(|r| read_into(r, Arc::clone(&tail))),
        child.stderr.take().map(|r| read_into(r, Arc::clone(&tail))),
    ]
    .into_iter()
    .flatten()
    .collect();

    let (status, exit) = match tokio::time::timeout(cmd.timeout, child.wait()).await {
        Ok(waited) => {
            let exit = waited.map_err(ParseError::Wait)?;
            // Reaped: the id is no longer ours to signal, unless something it started still holds the
            // group (checked below through the pipes).
            let status = if exit.success() {
                ParseStatus::Succeeded
            } else {
                ParseStatus::Failed
            };
            (status, exit.code())
        }
        Err(_) => {
            group.kill();
            let _ = child.wait().await;
            (ParseStatus::TimedOut, None)
        }
    };
    let duration = started.elapsed();
    // Output pipes still open after the leader exited mean a process it started lives on in its group,
    // which keeps the group id from being reused: kill it, then stop reading.
    let mut pending = readers;
    if tokio::time::timeout(PIPE_GRACE, wait_all(&mut pending))
        .await
        .is_err()
    {
        group.kill();
        for r in &pending {
            r.abort();
        }
    }
    group.0 = None;
    let output_tail = tail.lock().unwrap_or_else(|e| e.into_inner()).lines(TAIL_LINES);
    Ok(ParseRun {
        status,
        exit_code: exit,
        duration,
        output_tail,
    })
}

async fn wait_all(readers: &mut [JoinHandle<()>]) {
    for r in readers.iter_mut() {
        let _ = r.await;
    }
}

fn spawn_error(binary: &Path, source: std::io::Error) -> ParseError {
    match source.kind() {
        ErrorKind::NotFound => ParseError::NotFound {
            binary: binary.to_path_buf(),
        },
        ErrorKind::PermissionDenied => ParseError::NotExecutable {
            binary: binary.to_path_buf(),
            source,
        },
        _ => ParseError::Spawn {
            binary: binary.to_path_buf(),
            source,
        },
    }
}

fn read_into(mut reader: impl AsyncRead + Unpin + Send + 'static, tail: Arc<Mutex<Tail>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => tail.lock().unwrap_or_else(|e| e.into_inner()).push(&buf[..n]),
            }
        }
    })
}

/// The last [`TAIL_BYTES`] of a stream, however much was written.
#[derive(Debug, Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        // Trim in batches so a chatty dbt does not move the buffer on every read.
        if self.bytes.len() > 2 * TAIL_BYTES {
            let cut = self.bytes.len() - TAIL_BYTES;
            self.bytes.drain(..cut);
        }
    }

    /// The last `n` non-blank lines, without colour codes, each cut to [`LINE_CHARS`].
    fn lines(&self, n: usize) -> Vec<String> {
        let start = self.bytes.len().saturating_sub(TAIL_BYTES);
        let text = strip_ansi(&String::from_utf8_lossy(&self.bytes[start..]));
        let lines: Vec<String> = text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .map(|l| match l.char_indices().nth(LINE_CHARS) {
                Some((i, _)) => format!("{}…", &l[..i]),
                None => l.to_owned(),
            })
            .collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

/// Removes terminal escape sequences (`ESC [ … letter`): dbt colours a few lines before it has read
/// `DBT_USE_COLORS`.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use std::os::unix::fs::PermissionsExt as _;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn command(binary: PathBuf, dir: &Path, timeout: Duration) -> ParseCommand {
        ParseCommand {
            binary,
            project_dir: dir.to_path_buf(),
            profiles_dir: Some(dir.to_path_buf()),
            target_path: dir.join("target"),
            log_path: dir.join("logs"),
            timeout,
        }
    }

    #[test]
    fn environment_is_cut_down() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/u"),
            ("LANG", "C.UTF-8"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("SLUICE_MASTER_KEY", "k"),
            ("DBT_PROFILES_DIR", "/p"),
            ("DBT_USE_COLORS", "true"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = child_env(vars);
        let keys: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
            .collect();
        let expected: Vec<(String, String)> = [
            ("DBT_PROFILES_DIR", "/p"),
            ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
            ("DBT_USE_COLORS", "true"),
            ("HOME", "/home/u"),
            ("LANG", "C.UTF-8"),
            ("PATH", "/usr/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        assert_eq!(keys, expected);
    }

    #[test]
    fn tail_keeps_the_end_without_colours() {
        let mut t = Tail::default();
        for i in 0..20_000 {
            t.push(format!("line {i}\n").as_bytes());
        }
        t.push(b"\x1b[0m00:38:38  Encountered an error:\n\n  Syntax error near line 6\n");
        assert!(t.bytes.len() <= 2 * TAIL_BYTES);
        assert_eq!(
            t.lines(3),
            vec![
                "line 19999",
                "00:38:38  Encountered an error:",
                "  Syntax error near line 6"
            ]
        );
        assert_eq!(strip_ansi("\x1b[31mred\x1b[0m plain"), "red plain");
    }

    #[test]
    fn arguments_name_the_project_profiles_and_target() {
        let c = command(PathBuf::from("dbt"), Path::new("/p"), Duration::from_secs(1));
        assert_eq!(
            c.args(),
            [
                "parse",
                "--project-dir",
                "/p",
                "--profiles-dir",
                "/p",
                "--target-path",
                "/p/target",
                "--log-path",
                "/p/logs"
            ]
            .map(OsString::from)
            .to_vec()
        );
    }

    #[tokio::test]
    async fn exit_code_output_and_environment_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        // The script prints what it was given: arguments, a variable the test runner sets for this process
        // (cargo and nextest set CARGO_PKG_NAME) but the child must not see, its directory.
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let bin = script(
            tmp.path(),
            "fake-dbt",
            "echo \"args: $*\"; echo \"pkg=${CARGO_PKG_NAME:-unset} cwd=$(pwd)\"; \
             echo 'broken' >&2; exit 3",
        );
        let run = run(&command(bin, tmp.path(), Duration::from_secs(20)))
            .await
            .unwrap();
        assert_eq!((run.status, run.exit_code), (ParseStatus::Failed, Some(3)));
        let dir = tmp.path().display().to_string();
        assert!(
            run.output_tail
                .iter()
                .any(|l| l.starts_with("args: parse --project-dir")),
            "{:?}",
            run.output_tail
        );
        assert!(
            run.output_tail.contains(&format!("pkg=unset cwd={dir}")),
            "{:?}",
            run.output_tail
        );
        assert!(run.output_tail.contains(&"broken".to_owned()));
    }

    #[tokio::test]
    async fn a_hanging_dbt_is_killed_with_everything_it_started() {
        let tmp = tempfile::tempdir().unwrap();
        let pidfile = tmp.path().join("grandchild.pid");
        let bin = script(
            tmp.path(),
            "hanging-dbt",
            &format!("sleep 300 &\necho $! > {}\necho started\nwait", pidfile.display()),
        );
        let started = Instant::now();
        let run = run(&command(bin, tmp.path(), Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!((run.status, run.exit_code), (ParseStatus::TimedOut, None));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(run.output_tail, vec!["started"]);
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // The grandchild was in the group: gone (or a zombie awaiting its reaper), not sleeping on.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z"), "{state}");
    }

    #[tokio::test]
    async fn a_missing_binary_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = run(&command(
            tmp.path().join("no-dbt"),
            tmp.path(),
            Duration::from_secs(1),
        ))
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not exist"), "{err}");
        std::fs::write(tmp.path().join("not-exec"), "x").unwrap();
        let err = run(&command(
            tmp.path().join("not-exec"),
            tmp.path(),
            Duration::from_secs(1),
        ))
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot be executed"), "{err}");
    }
}
