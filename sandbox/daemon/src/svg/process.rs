//! The SVG renderer's own process. The daemon runs its own executable as `sluice-sandbox __render-svg`,
//! writes one SVG to its stdin and reads one answer from its stdout. Before it parses a byte the renderer
//! lowers its limits (address space, CPU time, file size, core dumps) and installs a seccomp filter that
//! allows only what drawing needs: writing to the pipes it has, memory, and exiting. Nothing may be
//! opened, no socket made, no program run, no process or thread started, no signal sent, no memory made
//! executable. A hostile SVG that finds a bug in the parser, or exhausts a limit, ends that process, never
//! the daemon; a rendering that runs over its time is killed (a thread in the daemon could only have been
//! abandoned, burning CPU).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

use super::{Png, render};
use crate::error::SvgError;

/// The first argument that makes `sluice-sandbox` the renderer.
pub const RENDER_ARG: &str = "__render-svg";

/// The renderer's address space: the SVG (at most 16 MiB) and its tree, a 16 MB pixmap, an embedded PNG
/// of up to 64 MiB decoded, and the PNG encoded.
const MEMORY_BYTES: u64 = 1 << 30;
/// usvg and resvg recurse once per nesting level (up to 1024).
const STACK_BYTES: u64 = 64 << 20;
/// The most SVG bytes the renderer reads (the protocol's largest image).
const MAX_INPUT: u64 = sluice_sandbox_protocol::MAX_IMAGES_BYTES;
/// The most answer bytes the daemon reads: a PNG of [`super::MAX_PIXELS`] RGBA pixels stored
/// uncompressed, with room for its chunks.
const MAX_ANSWER: u64 = super::MAX_PIXELS * 4 + (1 << 20);

const ANSWER_PNG: u8 = b'P';
const ANSWER_ERROR: u8 = b'E';
const ERROR_PARSE: u8 = 0;
const ERROR_NO_SIZE: u8 = 1;
const ERROR_FAILED: u8 = 2;

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Names the program run as the renderer (it must be a `sluice-sandbox` binary). Without it, the daemon
/// runs its own executable. Set once, before the first rendering; later calls change nothing.
pub fn use_program(program: PathBuf) {
    let _ = PROGRAM.set(program);
}

fn program() -> PathBuf {
    PROGRAM
        .get()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"))
}

/// Renders `svg` in a renderer process of its own and waits at most `timeout` for its PNG; a renderer
/// still going then is killed.
pub fn render_isolated(svg: Vec<u8>, timeout: Duration) -> Result<Png, SvgError> {
    let mut child = Command::new(program())
        .arg(RENDER_ARG)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SvgError::Failed(format!("the renderer cannot be started: {e}")))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(SvgError::Failed("the renderer has no pipes".into()));
    };
    // The pipes are served on a thread, so that the wait below is bounded whatever the renderer does;
    // the child itself stays here, unreaped until it is waited for, so killing it can hit nothing else.
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let io = std::thread::Builder::new()
        .name("svg-renderer-io".into())
        .spawn(move || {
            // A renderer that stopped early closes its stdin: its exit status says why.
            let _ = stdin.write_all(&svg);
            drop(stdin);
            let mut answer = Vec::new();
            let read = stdout.take(MAX_ANSWER + 1).read_to_end(&mut answer);
            let mut why = Vec::new();
            let _ = stderr.take(4096).read_to_end(&mut why);
            let _ = tx.send(read.map(|_| (answer, why)));
        });
    if let Err(e) = io {
        let _ = child.kill();
        let _ = child.wait();
        return Err(SvgError::Failed(format!(
            "no thread to talk to the renderer: {e}"
        )));
    }
    let outcome = rx.recv_timeout(timeout);
    if outcome.is_err() {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| SvgError::Failed(format!("waiting for the renderer: {e}")))?;
    let (answer, why) = match outcome {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Err(SvgError::Timeout(timeout.as_secs())),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            return Err(SvgError::Failed("the renderer's pipes were lost".into()));
        }
        Ok(Err(e)) => return Err(SvgError::Failed(format!("reading the renderer's answer: {e}"))),
        Ok(Ok(read)) => read,
    };
    if !status.success() {
        return Err(SvgError::Failed(format!(
            "the renderer stopped on this SVG: {}",
            why_stopped(status, &String::from_utf8_lossy(&why))
        )));
    }
    decode_answer(&answer)
}

/// Why a renderer ended without answering, from its exit status and the last line of its stderr.
fn why_stopped(status: std::process::ExitStatus, stderr: &str) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    let last = stderr.trim().lines().last().unwrap_or("");
    // Rust reports a failed allocation on stderr, then aborts (which the filter turns into SIGSYS).
    if last.starts_with("memory allocation of") {
        return format!("it needed more than the {} MiB it may use", MEMORY_BYTES >> 20);
    }
    match (status.signal(), status.code()) {
        (Some(libc::SIGSYS), _) => "it made a system call its seccomp filter refuses".to_owned(),
        (Some(libc::SIGKILL | libc::SIGXCPU), _) => "it went over its CPU time".to_owned(),
        (Some(sig), _) => format!("it was stopped by signal {sig}"),
        (None, code) if last.is_empty() => format!("it exited with code {}", code.unwrap_or(-1)),
        (None, code) => format!("it exited with code {} ({last})", code.unwrap_or(-1)),
    }
}

/// The renderer process's main: reads the SVG, confines itself, renders, answers. Returns the exit code.
pub fn serve() -> i32 {
    let mut svg = Vec::new();
    if let Err(e) = std::io::stdin().lock().take(MAX_INPUT + 1).read_to_end(&mut svg) {
        eprintln!("sluice SVG renderer: reading the SVG: {e}");
        return 2;
    }
    if let Err(e) = confine() {
        eprintln!("sluice SVG renderer: {e}");
        return 2;
    }
    let answer = encode_answer(std::panic::catch_unwind(|| render(&svg)).unwrap_or_else(|_| {
        Err(SvgError::Failed(
            "the renderer stopped on this SVG (it panicked)".into(),
        ))
    }));
    let mut out = std::io::stdout().lock();
    match out.write_all(&answer).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 2,
    }
}

/// Limits, then the seccomp filter (compiled before it is installed: compiling allocates and may need
/// calls the filter refuses).
fn confine() -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    let cpu = super::RENDER_TIMEOUT.as_secs() + 1;
    for (resource, value) in [
        (Resource::RLIMIT_AS, MEMORY_BYTES),
        (Resource::RLIMIT_STACK, STACK_BYTES),
        (Resource::RLIMIT_CPU, cpu),
        (Resource::RLIMIT_FSIZE, 0),
        (Resource::RLIMIT_CORE, 0),
        (Resource::RLIMIT_NPROC, 0),
    ] {
        setrlimit(resource, value, value).map_err(|e| format!("setrlimit {resource:?}: {e}"))?;
    }
    let filter = filter()?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    seccompiler::apply_filter(&filter).map_err(|e| format!("seccomp: {e}"))
}

/// The renderer's seccomp allowlist; anything else kills the process.
pub fn filter() -> Result<BpfProgram, String> {
    let arch =
        seccompiler::TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("seccomp: {e}"))?;
    let allow: &[i64] = &[
        libc::SYS_write,
        libc::SYS_close,
        libc::SYS_brk,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_futex,
        libc::SYS_getrandom,
        libc::SYS_clock_gettime,
        libc::SYS_sigaltstack,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ];
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> =
        allow.iter().map(|&nr| (nr, Vec::new())).collect();
    // Memory may be mapped and change protection, but never become executable.
    for nr in [libc::SYS_mmap, libc::SYS_mprotect] {
        let no_exec = SeccompCondition::new(
            2,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(|e| format!("seccomp: {e}"))?;
        rules.insert(nr, vec![no_exec]);
    }
    let filter = SeccompFilter::new(rules, SeccompAction::KillProcess, SeccompAction::Allow, arch)
        .map_err(|e| format!("seccomp: {e}"))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| format!("seccomp: {e}"))
}

fn encode_answer(result: Result<Png, SvgError>) -> Vec<u8> {
    match result {
        Ok(png) => {
            let mut out = Vec::with_capacity(10 + png.data.len());
            out.push(ANSWER_PNG);
            out.extend_from_slice(&png.width.to_be_bytes());
            out.extend_from_slice(&png.height.to_be_bytes());
            out.push(u8::from(png.text_left_out));
            out.extend_from_slice(&png.data);
            out
        }
        Err(e) => {
            let (kind, message) = match e {
                SvgError::Parse(m) => (ERROR_PARSE, m),
                SvgError::NoSize => (ERROR_NO_SIZE, String::new()),
                SvgError::Failed(m) => (ERROR_FAILED, m),
                other => (ERROR_FAILED, other.to_string()),
            };
            let mut out = vec![ANSWER_ERROR, kind];
            out.extend_from_slice(message.as_bytes());
            out
        }
    }
}

fn decode_answer(answer: &[u8]) -> Result<Png, SvgError> {
    let bad = || SvgError::Failed("the renderer's answer is not one it gives".into());
    match answer.split_first() {
        Some((&ANSWER_PNG, rest)) if rest.len() >= 9 && answer.len() as u64 <= MAX_ANSWER => {
            let be = |at: usize| {
                rest.get(at..at + 4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_be_bytes)
            };
            let (width, height) = (be(0).ok_or_else(bad)?, be(4).ok_or_else(bad)?);
            let data = rest[9..].to_vec();
            // The renderer may have been subverted by the SVG it parsed: what it sends must at least be a
            // PNG within the caps, as any image a run saves is.
            if !data.starts_with(super::PNG_MAGIC) || u64::from(width) * u64::from(height) > super::MAX_PIXELS
            {
                return Err(bad());
            }
            Ok(Png {
                data,
                width,
                height,
                text_left_out: rest[8] != 0,
            })
        }
        Some((&ANSWER_ERROR, [kind, message @ ..])) => {
            let message = String::from_utf8_lossy(message).into_owned();
            Err(match *kind {
                ERROR_PARSE => SvgError::Parse(message),
                ERROR_NO_SIZE => SvgError::NoSize,
                _ => SvgError::Failed(message),
            })
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn answers_round_trip() {
        let png = super::super::render(
            b"<svg xmlns='http://www.w3.org/2000/svg' width='3' height='2'><rect width='3' height='2'/></svg>",
        )
        .unwrap();
        assert_eq!(decode_answer(&encode_answer(Ok(png.clone()))).unwrap(), png);
        let errors = [
            SvgError::Parse("bad".into()),
            SvgError::NoSize,
            SvgError::Failed("it cannot be rendered: x".into()),
        ];
        for e in errors {
            let text = e.to_string();
            assert_eq!(
                decode_answer(&encode_answer(Err(e))).unwrap_err().to_string(),
                text
            );
        }
        for garbage in [&b""[..], b"P", b"P\0\0\0\x01\0\0\0\x01\0not a png", b"X"] {
            assert_eq!(
                decode_answer(garbage).unwrap_err().to_string(),
                "it cannot be rendered: the renderer's answer is not one it gives"
            );
        }
    }
}
