"""The MCP client half of tests/docker/run.sh: drives the compose deployment through the proxy with the
official Python MCP SDK (the venv of tests/clients/python/install.sh).

    mcp_check.py URL KEY smoke CONNECTION EXPECT_BACKEND   tools, a query, execute_code and sandbox_status
    mcp_check.py URL KEY unavailable                        execute_code must say the sandbox is unavailable
    mcp_check.py URL KEY sessions CONNECTION N              N sessions, each 50 calls (cursor paging, files)
    mcp_check.py URL KEY gvisor                             the code runs under gVisor (4.4.0) and every escape
                                                            attempt fails with the expected error

Prints `ok: ...` lines; on a failed check prints `FAIL: ...` on stderr and exits 1.
"""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import asynccontextmanager

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


class Failure(Exception):
    pass


def check(cond: bool, message: str) -> None:
    if not cond:
        raise Failure(message)


def text_of(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


@asynccontextmanager
async def session(url: str, key: str, instances: list[str] | None = None):
    """One MCP session; `instances` collects the X-Sluice-Instance header (set by the proxy) of every response."""

    async def record(response):
        if instances is not None and "x-sluice-instance" in response.headers:
            instances.append(response.headers["x-sluice-instance"])

    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx2.Timeout(120, read=300),
        event_hooks={"response": [record]},
    ) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            yield client


async def call(client, name: str, args: dict, want_error: bool = False):
    result = await client.call_tool(name, args)
    if want_error:
        check(result.is_error, f"{name} should have failed, got: {text_of(result)[:500]}")
    else:
        check(not result.is_error, f"{name} failed: {text_of(result)[:1000]}")
    return result


async def smoke(url: str, key: str, connection: str, expect_backend: str) -> None:
    async with session(url, key) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        for t in ("query_database", "execute_code", "sandbox_status", "fs_write_file", "fs_read_file"):
            check(t in tools, f"tools/list lacks {t}: {sorted(tools)}")
        print(f"ok: tools/list has {len(tools)} tools")
        r = await call(c, "query_database", {"connection_name": connection, "sql": "SELECT count(*) AS n FROM events"})
        n = r.structured_content["rows"][0][0] if r.structured_content else None
        check(n == 10000, f"query_database on the mounted warehouse: expected 10000 rows counted, got {text_of(r)[:300]}")
        print("ok: query_database on the mounted DuckDB warehouse")
        r = await call(c, "sandbox_status", {})
        status = r.structured_content or {}
        print("sandbox_status: " + json.dumps(status)[:3000])
        check(status.get("backend") == expect_backend or expect_backend in text_of(r),
              f"sandbox_status backend: expected {expect_backend}, got {text_of(r)[:500]}")
        print(f"ok: sandbox_status reports backend {expect_backend}")
        code = (
            "import platform\n"
            "print('release=' + platform.release())\n"
            "print('version=' + open('/proc/version').read().strip())\n"
            "import pandas\n"
            "print('pandas=' + pandas.__version__)\n"
        )
        r = await call(c, "execute_code", {"code": code, "timeout": 120})
        out = (r.structured_content or {}).get("stdout", text_of(r))
        print("execute_code stdout: " + out.replace("\n", " | "))
        check("pandas=" in out, f"execute_code did not run pandas: {text_of(r)[:500]}")
        print("ok: execute_code ran Python with pandas in the sandbox")
        return out


async def unavailable(url: str, key: str) -> None:
    async with session(url, key) as c:
        r = await call(c, "execute_code", {"code": "print(1)", "timeout": 30}, want_error=True)
        msg = text_of(r)
        check("sandbox unavailable" in msg.lower(), f"expected 'sandbox unavailable', got: {msg[:500]}")
        print(f"ok: with the sandbox down, execute_code says: {msg.splitlines()[0][:200]}")


async def one_session(url: str, key: str, connection: str, index: int) -> list[str]:
    instances: list[str] = []
    calls = 0
    async with session(url, key, instances) as c:
        sql = "SELECT id, payload FROM events ORDER BY id"
        r = await call(c, "query_database", {"connection_name": connection, "sql": sql, "row_limit": 10000})
        calls += 1
        seen = r.structured_content["rows"]
        cursor = r.structured_content.get("cursor")
        while calls < 40:
            check(cursor is not None, f"session {index}: the result ended after {calls} pages; need a larger result")
            r = await call(c, "query_database", {"connection_name": connection, "sql": sql, "row_limit": 10000, "cursor": cursor})
            calls += 1
            rows = r.structured_content["rows"]
            check(rows and rows[0][0] == seen[-1][0] + 1, f"session {index}: page {calls} does not continue the previous one")
            seen.extend(rows)
            cursor = r.structured_content.get("cursor")
        for i in range(5):
            await call(c, "fs_write_file", {"path": f"notes/{i}.txt", "content": f"session {index} file {i}"})
            r = await call(c, "fs_read_file", {"path": f"notes/{i}.txt"})
            check(f"session {index} file {i}" in text_of(r), f"session {index}: read back {text_of(r)[:200]}")
            calls += 2
    check(calls == 50, f"session {index}: {calls} calls")
    distinct = sorted(set(instances))
    check(len(distinct) == 1, f"session {index} was served by several instances: {distinct} (affinity broken)")
    print(f"ok: session {index}: 50 calls (40 pages, {len(seen)} rows in order; 5 files written and read) on {distinct[0]}")
    return distinct


async def sessions(url: str, key: str, connection: str, n: int) -> None:
    used: set[str] = set()
    for i in range(n):
        used.update(await one_session(url, key, connection, i))
        if len(used) >= 2 and i >= 1:
            break
    check(len(used) >= 2, f"every session landed on the same instance {sorted(used)}: the proxy does not balance")
    print(f"ok: sessions were served by {len(used)} instances: {sorted(used)}")


async def run_code(c, code: str, timeout: int = 60) -> str:
    r = await call(c, "execute_code", {"code": code, "timeout": timeout})
    return (r.structured_content or {}).get("stdout", text_of(r))


ESCAPES = r"""
import errno, os, socket, time
def attempt(name, fn, expected):
    try:
        fn()
        print(f"{name}: SUCCEEDED")
    except socket.gaierror as e:
        print(f"{name}: EAI" + ("" if "EAI" in expected else f" (expected {expected})") + f" {e}")
    except OSError as e:
        code = errno.errorcode.get(e.errno, str(e.errno))
        print(f"{name}: {code}" + ("" if code in expected else f" (expected {expected})"))
# (a) another session's workspace: no path leads there (the other session's file is not anywhere in this root)
found = [os.path.join(d, f) for d, _, fs in os.walk("/") if not d.startswith(("/proc", "/usr", "/opt"))
         for f in fs if "sluice-secret" in f]
print("other_workspace:", "FOUND " + repr(found) if found else "not reachable")
attempt("other_workspace_by_path", lambda: open("/var/lib/sluice-sandbox/root/ws/u30001/sluice-secret-a.txt"), ["ENOENT"])
# (b) other sessions' processes
pids = sorted(p for p in os.listdir("/proc") if p.isdigit())
print("proc:", "only this run" if pids == ["1"] else f"SEES {pids}")
# (c) the network: no socket but AF_UNIX (seccomp), and no route even for a raw connect
attempt("socket_inet", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), ["EPERM", "EACCES"])
attempt("socket_inet6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM), ["EPERM", "EACCES"])
attempt("dns", lambda: socket.getaddrinfo("gateway", 3300), ["EAI"])
# (d) writes outside the workspace and /tmp
for p in ["/usr/sluice-x", "/sluice-x", "/etc/sluice-x", "/opt/sluice/sluice-x", "/proc/sluice-x"]:
    attempt("write " + p, lambda p=p: open(p, "w"), ["EACCES", "EROFS", "EPERM", "ENOENT"])
open("/tmp/ok", "w").write("x"); open("/workspace/ok", "w").write("x"); print("write /tmp and /workspace: ok")
# privileges
print("uid:", os.getuid(), os.geteuid(), "root" if os.geteuid() == 0 else "unprivileged")
attempt("setuid0", lambda: os.setuid(0), ["EPERM"])
attempt("chroot", lambda: os.chroot("/tmp"), ["EPERM"])
"""


async def gvisor(url: str, key: str) -> None:
    async with session(url, key) as a, session(url, key) as b:
        await call(a, "fs_write_file", {"path": "sluice-secret-a.txt", "content": "session a's secret"})
        out = await run_code(a, "import os, platform\nprint(platform.release(), os.getuid(), open('sluice-secret-a.txt').read())")
        print("session a: " + out.strip())
        release, uid_a, *_ = out.split()
        check(release == "4.4.0", f"the code's kernel release is {release}, not gVisor's 4.4.0")
        check(uid_a != "0", f"session a's code runs as uid {uid_a}")
        print("ok: the code runs under gVisor (platform.release() == '4.4.0') as an unprivileged uid")
        out = await run_code(b, "print(open('/proc/version').read().strip())\n" + ESCAPES)
        print("session b:\n    " + out.strip().replace("\n", "\n    "))
        check("Linux version 4.4.0" in out, "/proc/version is not gVisor's")
        check("SUCCEEDED" not in out and "(expected" not in out and "FOUND" not in out and "SEES" not in out,
              "an escape attempt did not fail as expected (see above)")
        check("unprivileged" in out and f"uid: {uid_a} " not in out, "session b runs as root or as session a's uid")
        print("ok: (a) no other workspace, (b) no other process, (c) no network, (d) no write outside; no root")
        # (e) a background process does not outlive its run.
        await run_code(b, "import os, time\nif os.fork() == 0:\n    os.setsid()\n    for i in range(600):\n"
                          "        open('/workspace/alive.txt', 'w').write(str(i)); time.sleep(0.05)\n    os._exit(0)\n"
                          "time.sleep(0.3)\nprint('started')")
        await asyncio.sleep(1.0)
        out = await run_code(b, "import os, time\na = open('alive.txt').read(); time.sleep(1.0)\n"
                                "print('same' if open('alive.txt').read() == a else 'CHANGED', sorted(p for p in os.listdir('/proc') if p.isdigit()))")
        print("session b, next run: " + out.strip())
        check(out.startswith("same ['1']"), "a process forked by the previous run is still alive")
        print("ok: (e) a forked background process died with its run")
        r = await b.call_tool("execute_code", {"code": "while True: pass", "timeout": 2})
        sc = r.structured_content or {"text": text_of(r)}
        print(f"spin: exit {sc.get('exit_code', sc.get('exit'))} limits {sc.get('limits_hit')}")
        check("timeout" in json.dumps(sc), f"the wall clock did not stop a spinning run: {text_of(r)[:300]}")
        print("ok: the wall clock kills a spinning run")


def main() -> int:
    url, key, what, *rest = sys.argv[1:]
    try:
        if what == "smoke":
            asyncio.run(smoke(url, key, rest[0], rest[1]))
        elif what == "gvisor":
            asyncio.run(gvisor(url, key))
        elif what == "unavailable":
            asyncio.run(unavailable(url, key))
        elif what == "sessions":
            asyncio.run(sessions(url, key, rest[0], int(rest[1])))
        else:
            print(f"unknown check {what}", file=sys.stderr)
            return 2
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
