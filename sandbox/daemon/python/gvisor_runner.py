"""Sluice gVisor runner: the process of one prepared gVisor container, waiting for one run's code.

The daemon starts `runsc run` with this script as the container's process ahead of time (a warm jail).
It imports the preload modules (argv[1:]), says `ready` on stdout and blocks on stdin. The run then
arrives on stdin: one JSON header line (the run's rlimits) and the code until end of file. Output goes
to the container's stdout and stderr, which are the daemon's pipes; the exit status is the container's,
as `runsc` reports it to the trusted process outside the sandbox.

gVisor's kernel is the isolation here (its own syscall implementation, a host seccomp filter on
itself, a gofer for files); this script only sets the run's limits and runs the code.
"""

import builtins
import json
import os
import resource
import sys
import traceback
import types


def read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def print_user_traceback(exc):
    # The first frame is this runner; the user only needs their own frames.
    traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)


def main():
    for name in sys.argv[1:]:
        __import__(name)
    os.write(1, b"sluice-ready\n")
    data = read_all(0)
    header, _, code = data.partition(b"\n")
    run = json.loads(header)
    for res, soft, hard in run["rlimits"]:
        # Only ever lower: gVisor may start a limit lower than the bundle asked for. Setting a limit to
        # its current value is skipped: gVisor answers EPERM for RLIMIT_MSGQUEUE (0, 0) -> (0, 0).
        current = resource.getrlimit(res)
        if current[1] != resource.RLIM_INFINITY:
            hard = min(hard, current[1])
        if (min(soft, hard), hard) != current:
            resource.setrlimit(res, (min(soft, hard), hard))
    for link, target in run.get("links", ()):
        # Read-only files the daemon names (matplotlib's prebuilt font cache), linked into the fresh /tmp.
        try:
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(target, link)
        except OSError:
            pass
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    del data, header, run
    main_mod = types.ModuleType("__main__")
    main_mod.__builtins__ = builtins
    sys.modules["__main__"] = main_mod
    sys.argv = ["<sandbox>"]
    sys.path.insert(0, "/workspace")
    rc = 0
    try:
        exec(compile(code, "<sandbox>", "exec"), main_mod.__dict__)
    except SystemExit as exc:
        if exc.code is None:
            rc = 0
        elif isinstance(exc.code, int):
            rc = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            rc = 1
    except BaseException as exc:  # noqa: BLE001 - the user's error is their output
        print_user_traceback(exc)
        rc = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    os._exit(rc)


main()
