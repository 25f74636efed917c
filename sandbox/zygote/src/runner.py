"""Runs one run's code in the jail's embedded interpreter: the only Python sluice-sandbox-zygote ships.

The zygote (Rust) calls `prepare` in a run's PID 1 once the jail is locked down, before it reports
ready, and `run` after the code has been read from its memfd and stdout/stderr point at the run's pipes.
From `exec` on, nothing here may trust the process: the report pipe carries only self-reported,
informational lines ("limit memory", "done RC").
"""

import builtins
import os
import sys
import traceback
import types


def _say(fd, text):
    # A daemon that went away must not turn into an exception in the user's process.
    try:
        os.write(fd, (text + "\n").encode())
    except OSError:
        pass


def _print_user_traceback(exc):
    # The first frame is this runner; the user only needs their own frames.
    traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)


def prepare(env):
    """Everything that does not depend on the code, done while the jail waits for it.

    Besides the environment, this runs the interpreter's common path once (a module, compile, exec, a
    print and a flush to /dev/null): the pages of the interpreter's heap that a run writes are copies of
    the zygote's, and copying them here, while the jail is prepared ahead, keeps those page faults out of
    the run's own time.
    """
    # os.environ mirrors the C environment through putenv, so subprocesses see the same variables.
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["<sandbox>"]
    sys.path.insert(0, "/workspace")
    warm = types.ModuleType("__main__")
    warm.__builtins__ = builtins
    exec(compile("print(end='')\n", "<sandbox>", "exec"), warm.__dict__)
    sys.stdout.flush()
    sys.stderr.flush()


def run(code, report):
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    rc = 0
    try:
        exec(compile(code, "<sandbox>", "exec"), main.__dict__)
    except SystemExit as exc:
        if exc.code is None:
            rc = 0
        elif isinstance(exc.code, int):
            rc = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            rc = 1
    except MemoryError as exc:
        _say(report, "limit memory")
        _print_user_traceback(exc)
        rc = 1
    except BaseException as exc:  # noqa: BLE001 - the user's error is their output
        _print_user_traceback(exc)
        rc = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    # Closing the output and saying "done" lets the daemon answer without waiting for the kernel to tear
    # down this run's namespaces (several ms); it kills the PID namespace right after.
    for fd in (1, 2):
        try:
            os.close(fd)
        except OSError:
            pass  # The code closed it itself.
    _say(report, f"done {rc}")
    os._exit(rc)
