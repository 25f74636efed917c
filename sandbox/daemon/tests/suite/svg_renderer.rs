//! The SVG renderer process: SVGs under `outputs/` come back as PNG renderings within the caps, rendered
//! by the real `sluice-sandbox __render-svg`; the renderer runs confined (seccomp filter, no new
//! privileges, memory, CPU and file-size limits) and is killed when it runs over its time. Each protection
//! is tried: the filter kills a process that opens a file, makes a socket, maps executable memory or
//! starts a process.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use sluice_sandbox::error::SvgError;
use sluice_sandbox::images::{ImageCaps, collect};
use sluice_sandbox::svg;
use sluice_sandbox::workspace::Workspace;
use sluice_sandbox_protocol::{Change, ImageCap, ImageLeftOut, ImageMime, ProducedFile, SvgRendering};

fn use_the_daemons_renderer() {
    svg::use_program(env!("CARGO_BIN_EXE_sluice-sandbox").into());
}

fn square(fill: &str) -> Vec<u8> {
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='8' height='8'><rect width='8' height='8' \
         fill='{fill}'/></svg>"
    )
    .into_bytes()
}

/// An SVG that keeps a renderer busy for seconds: turbulence over a 2048 x 2048 canvas, many times.
fn slow_svg() -> Vec<u8> {
    let mut s = String::from(
        "<svg xmlns='http://www.w3.org/2000/svg' width='2048' height='2048'><filter id='n' x='0' y='0' \
         width='1' height='1'><feTurbulence baseFrequency='0.01' numOctaves='10'/></filter>",
    );
    for _ in 0..200 {
        s.push_str("<rect width='2048' height='2048' filter='url(#n)'/>");
    }
    s.push_str("</svg>");
    s.into_bytes()
}

/// The renderer processes running now (found by their command line).
fn renderers() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|a| a == svg::RENDER_ARG.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn svgs_are_sent_as_png_renderings_within_the_caps() {
    use_the_daemons_renderer();
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::new(std::fs::File::open(dir.path()).unwrap().into());
    // Turbulence: a small SVG whose PNG rendering is noise, far larger than the SVG.
    let noise = b"<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64'><filter id='n'>\
                  <feTurbulence baseFrequency='0.9' numOctaves='4'/></filter>\
                  <rect width='64' height='64' filter='url(#n)'/></svg>"
        .to_vec();
    let files = [
        ("outputs/a.svg", square("red")),
        (
            "outputs/b.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>".to_vec(),
        ),
        (
            "outputs/c.svg",
            vec![b' '; 3000].into_iter().chain(square("blue")).collect(),
        ),
        ("outputs/d.svg", noise),
        ("outputs/e.svg", square("red")),
    ];
    let produced: Vec<ProducedFile> = files
        .iter()
        .map(|(path, content)| {
            ws.write(path, content, true).unwrap();
            ProducedFile {
                path: (*path).into(),
                size: content.len() as u64,
                change: Change::Created,
            }
        })
        .collect();
    let one = svg::render(&square("red")).unwrap().data.len() as u64;
    // Room for the first rendering and not the second: the room counts PNG bytes, not SVG bytes.
    let caps = ImageCaps {
        per_image: 2000,
        per_run: one + one / 2,
    };
    let got = collect(&ws, &produced, caps);
    let sent: Vec<(&str, ImageMime, Option<SvgRendering>)> = got
        .images
        .iter()
        .map(|i| (i.path.as_str(), i.mime, i.rendered_from_svg))
        .collect();
    let rendering = SvgRendering {
        width: 8,
        height: 8,
        text_left_out: false,
    };
    assert_eq!(sent, vec![("outputs/a.svg", ImageMime::Png, Some(rendering))]);
    // The renderer process draws exactly what the renderer does in the daemon's own tests.
    assert_eq!(got.images[0].data.0, svg::render(&square("red")).unwrap().data);
    // Over the cap per image as a file: left out unparsed, like any image.
    assert_eq!(
        got.left_out,
        vec![ImageLeftOut {
            path: "outputs/c.svg".into(),
            mime: ImageMime::Svg,
            size: files[2].1.len() as u64,
            cap: ImageCap::PerImage,
            cap_bytes: 2000,
        }]
    );
    let reasons: Vec<(&str, &str)> = got
        .not_rendered
        .iter()
        .map(|n| (n.path.as_str(), n.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0].0, "outputs/b.svg");
    assert!(
        reasons[0].1.starts_with("the SVG cannot be parsed: "),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, "outputs/d.svg");
    assert!(
        reasons[1].1.starts_with("its PNG rendering (")
            && reasons[1]
                .1
                .ends_with(", 64x64 px) is over the limit of 2000 bytes per image"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[2],
        (
            "outputs/e.svg",
            format!(
                "its PNG rendering ({one} bytes) is more than the run's earlier images left of the limit of {} \
                 bytes per run",
                caps.per_run
            )
            .as_str()
        )
    );
    assert_eq!(got.not_rendered[0].size, files[1].1.len() as u64);
    assert!(
        renderers().is_empty(),
        "renderers left running: {:?}",
        renderers()
    );
}

/// While it renders, the renderer process runs under its seccomp filter with no new privileges and its
/// limits; a rendering past its time is killed (its process gone), and the next SVG renders at once.
#[test]
fn the_renderer_is_confined_and_killed_at_its_time() {
    use_the_daemons_renderer();
    let rendering = std::thread::spawn(|| svg::render_isolated(slow_svg(), Duration::from_secs(3)));
    let deadline = Instant::now() + Duration::from_secs(2);
    let pid = loop {
        if let Some(&pid) = renderers().first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no renderer process seen");
        std::thread::sleep(Duration::from_millis(5));
    };
    // Confinement is installed once the SVG is read; wait for it.
    let deadline = Instant::now() + Duration::from_secs(2);
    let status = loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        if status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Seccomp:", "2"])
        {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the renderer never installed its filter:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["NoNewPrivs:", "1"]),
        "{status}"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let limit = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| {
                l[name.len()..]
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    assert_eq!(limit("Max address space"), "1073741824 1073741824", "{limits}");
    assert_eq!(limit("Max cpu time"), "11 11", "{limits}");
    assert_eq!(limit("Max file size"), "0 0", "{limits}");
    assert_eq!(limit("Max processes"), "0 0", "{limits}");
    assert_eq!(limit("Max core file size"), "0 0", "{limits}");

    let started = Instant::now();
    assert_eq!(rendering.join().unwrap(), Err(SvgError::Timeout(3)));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the renderer outlived its time"
    );
    assert!(svg::render_isolated(square("green"), svg::RENDER_TIMEOUT).is_ok());
}

/// Runs `attempt` in a child process under the renderer's filter and returns how the child ended.
fn under_the_filter(attempt: fn()) -> nix::sys::wait::WaitStatus {
    use nix::unistd::{ForkResult, fork};
    // Compiled before the fork: the child only installs it and tries the call.
    let filter = svg::renderer_filter().unwrap();
    // SAFETY: the child makes only system calls (prctl, seccomp, the attempt, _exit) before it exits.
    #[allow(unsafe_code)]
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let _ = nix::sys::prctl::set_no_new_privs();
            if seccompiler::apply_filter(&filter).is_err() {
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(3) };
            }
            attempt();
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => nix::sys::wait::waitpid(child, None).unwrap(),
    }
}

#[test]
#[allow(unsafe_code)]
fn the_renderers_filter_kills_what_drawing_never_does() {
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;
    let attempts: [(&str, fn()); 6] = [
        ("open a file", || {
            // SAFETY: a plain system call on a static C string.
            unsafe { libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY) };
        }),
        ("make a socket", || {
            // SAFETY: a plain system call.
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        }),
        ("map executable memory", || {
            // SAFETY: a fresh anonymous mapping, never touched.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
        }),
        ("start a process", || {
            // SAFETY: a plain system call; the child (if any) exits at once.
            if unsafe { libc::syscall(libc::SYS_fork) } == 0 {
                unsafe { libc::_exit(0) };
            }
        }),
        ("signal another process", || {
            // SAFETY: a plain system call (signal 0 only checks).
            unsafe { libc::kill(1, 0) };
        }),
        ("run a program", || {
            let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
            // SAFETY: a static path and a null-terminated argv.
            unsafe { libc::execv(c"/bin/true".as_ptr(), argv.as_ptr()) };
        }),
    ];
    for (what, attempt) in attempts {
        let status = under_the_filter(attempt);
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{what}: {status:?}"
        );
    }
    // What drawing does stays allowed: memory, and writing its answer.
    let allowed = under_the_filter(|| {
        let v = vec![7u8; 64 << 20];
        // SAFETY: writes from a live buffer to the process's own stderr.
        unsafe { libc::write(2, v.as_ptr().cast(), 0) };
    });
    assert!(matches!(allowed, WaitStatus::Exited(_, 0)), "{allowed:?}");
}
