//! The embedded interpreter: started isolated as the sandbox venv's Python, preloading modules while the
//! process is still single-threaded, and the fork hooks a child that will run Python code needs.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use sluice_sandbox_jail::{PreloadFailure, PreloadReport};

/// The Python version this binary links (`major.minor`), from `PYO3_PYTHON` at build time.
pub const BUILT_VERSION: &str = env!("SLUICE_ZYGOTE_PYTHON_VERSION");
/// The interpreter this binary was built against.
pub const BUILT_PYTHON: &str = env!("SLUICE_ZYGOTE_PYTHON");

/// The in-interpreter part of a run (fresh `__main__`, exit codes, traceback, report line).
const RUNNER: &CStr = match CStr::from_bytes_with_nul(concat!(include_str!("runner.py"), "\0").as_bytes()) {
    Ok(c) => c,
    Err(_) => panic!("runner.py contains a NUL byte"),
};

/// Why the venv's interpreter cannot be embedded by this build, if it cannot.
pub fn version_mismatch(venv_python: &str, venv_version: &str) -> Option<String> {
    let minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    (minor(venv_version) != BUILT_VERSION).then(|| {
        format!(
            "sluice-sandbox-zygote was built against Python {BUILT_VERSION} ({BUILT_PYTHON}) but the sandbox \
             interpreter {venv_python} is Python {venv_version}; rebuild it against the interpreter the venv \
             was made from: PYO3_PYTHON=<that python> cargo build --release -p sluice-sandbox-zygote \
             (.ci/env.sh sets PYO3_PYTHON from SLUICE_BASE_PYTHON)"
        )
    })
}

/// Starts the interpreter as `python -I -B` would: the regular configuration in isolated mode (no
/// environment variables, no user site; unlike the "isolated configuration" it still configures the
/// locale, so stdio is UTF-8 under C.UTF-8 as before), with `python` as its executable so that
/// `sys.prefix` is the venv, and without writing bytecode (the installation is read-only in the jail).
pub fn initialize(python: &str) -> Result<(), String> {
    let path = CString::new(python).map_err(|_| format!("{python:?} contains a NUL byte"))?;
    let status_error = |what: &str, s: ffi::PyStatus| -> Option<String> {
        // SAFETY: PyStatus_Exception only reads the status value.
        if unsafe { ffi::PyStatus_Exception(s) } == 0 {
            return None;
        }
        let msg = if s.err_msg.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: a non-null err_msg is a static NUL-terminated string owned by libpython.
            unsafe { CStr::from_ptr(s.err_msg) }
                .to_string_lossy()
                .into_owned()
        };
        Some(format!("{what}: {msg}"))
    };
    let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::uninit();
    // SAFETY: PyConfig_InitPythonConfig fully initialises the struct it is given; every later call gets
    // that initialised config, and PyConfig_Clear frees what the setters allocated.
    unsafe {
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let config = config.assume_init_mut();
        config.isolated = 1;
        config.use_environment = 0;
        config.user_site_directory = 0;
        config.parse_argv = 0;
        config.write_bytecode = 0;
        config.install_signal_handlers = 1;
        let mut result = None;
        for field in [&raw mut config.program_name, &raw mut config.executable] {
            let s = ffi::PyConfig_SetBytesString(config, field, path.as_ptr());
            result = result.or(status_error("interpreter path", s));
        }
        if result.is_none() {
            let s = ffi::Py_InitializeFromConfig(config);
            result = status_error("Python initialisation", s);
        }
        ffi::PyConfig_Clear(config);
        result.map_or(Ok(()), Err)
    }
}

/// Imports each module; one that fails is reported with its error's last line and the rest still load.
pub fn preload(py: Python<'_>, modules: &[String]) -> PreloadReport {
    let mut report = PreloadReport::default();
    for m in modules {
        match py.import(m.as_str()) {
            Ok(_) => report.imported.push(m.clone()),
            Err(e) => report.failed.push(PreloadFailure {
                module: m.clone(),
                error: e.to_string().lines().last().unwrap_or_default().to_string(),
            }),
        }
    }
    report
}

/// Objects that exist now are never collected in a child: without this the first GC pass in every child
/// touches (and so copies) every page of the interpreter's heap.
pub fn freeze(py: Python<'_>) -> PyResult<()> {
    py.import("gc")?.call_method0("freeze")?;
    Ok(())
}

/// The runner module, compiled once in the zygote.
pub fn runner(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let module = PyModule::from_code(py, RUNNER, c"<sluice-runner>", c"_sluice_runner")?;
    Ok(module.into_any().unbind())
}

/// The runner's `prepare`: the environment, and the interpreter's common path run once (see runner.py).
pub fn prepare_run(py: Python<'_>, runner: &Py<PyAny>, env: &[(String, String)]) -> PyResult<()> {
    let env_dict = PyDict::new(py);
    for (k, v) in env {
        env_dict.set_item(k, v)?;
    }
    runner.call_method1(py, "prepare", (env_dict,))?;
    Ok(())
}

/// Becomes the user's code: never returns (the runner ends the process with the code's exit status).
pub fn run_code(py: Python<'_>, runner: &Py<PyAny>, code: &[u8], report: i32) -> ! {
    // At most two malloc arenas: glibc reserves 64 MiB of address space for each thread's arena, so a
    // library that starts a thread per core (DuckDB starts ten here) used up most of a run's address-space
    // limit (RLIMIT_AS, 1 GiB by default) with reservations alone, and its next 2 MiB block failed.
    // SAFETY: mallopt only sets a malloc parameter of this (single-threaded) process.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    let outcome = runner
        .call_method1(py, "run", (PyBytes::new(py, code), report))
        .map(|_| ());
    if let Err(e) = outcome {
        e.print(py);
    }
    // SAFETY: _exit ends the process at once; nothing of this process is shared with any other.
    unsafe { libc::_exit(70) }
}

/// `fork()` with the interpreter's fork protocol: the `os.register_at_fork` hooks run (random reseeds,
/// threading re-initialises) in a child that will run Python code.
pub fn fork_for_python() -> nix::Result<libc::pid_t> {
    // SAFETY: the process is single-threaded and holds the GIL; PyOS_BeforeFork / AfterFork_* bracket the
    // fork exactly as os.fork() does.
    unsafe {
        ffi::PyOS_BeforeFork();
        let pid = libc::fork();
        if pid == 0 {
            ffi::PyOS_AfterFork_Child();
        } else {
            ffi::PyOS_AfterFork_Parent();
        }
        if pid < 0 {
            return Err(nix::errno::Errno::last());
        }
        Ok(pid)
    }
}

/// `clone(2)` with `flags` (namespaces for the child, and `SIGCHLD`) and no new stack, with the interpreter's
/// fork protocol as in [`fork_for_python`]: one system call makes the child PID 1 of a fresh PID namespace,
/// where `unshare` and `fork` would need a second fork (each costs milliseconds under gVisor's ptrace
/// platform).
pub fn clone_for_python(flags: libc::c_int) -> nix::Result<libc::pid_t> {
    // SAFETY: the process is single-threaded and holds the GIL; without CLONE_VM or a new stack the child
    // is a copy of this process as after fork(), and PyOS_BeforeFork / AfterFork_* bracket it the same way.
    unsafe {
        ffi::PyOS_BeforeFork();
        let pid = libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
        // Read before the interpreter's hooks make system calls of their own.
        let errno = nix::errno::Errno::last();
        if pid == 0 {
            ffi::PyOS_AfterFork_Child();
        } else {
            ffi::PyOS_AfterFork_Parent();
        }
        if pid < 0 {
            return Err(errno);
        }
        Ok(pid as libc::pid_t)
    }
}

/// `fork()` without the interpreter's at-fork hooks, for the zygote's own children (a session and its
/// launcher), which never run Python code: the hooks would only copy pages of the zygote's heap.
pub fn raw_fork() -> nix::Result<libc::pid_t> {
    // SAFETY: the process is single-threaded; the child only runs Rust code until it forks a jail with
    // [`fork_for_python`].
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_minor() {
        let same = format!("{BUILT_VERSION}.7");
        // (venv version, refused)
        let cases = [(same.as_str(), false), ("2.7.18", true), ("3.99.0", true)];
        for (v, refused) in cases {
            assert_eq!(version_mismatch("/v/bin/python", v).is_some(), refused, "{v}");
        }
    }
}
