"""Drives a running Sluice gateway with the official Python MCP SDK (PyPI `mcp`) over streamable HTTP.

Usage: client.py URL KEY
       client.py --stdio SLUICE_BINARY DATA_DIR   (the SDK starts `sluice stdio --data-dir DATA_DIR`)

It connects twice: in the SDK's default mode (`auto`: a `server/discover` probe, which the gateway answers
with the 2026-07-28 revision, falling back to the `initialize` handshake on a 2025-era server; what a
Python user gets out of the box) and in `legacy` mode (the `initialize` handshake of 2025-06-18/2025-11-25
straight away). On each connection it lists the tools, calls `query_database` and `describe_table` with
checks on their results, and calls the other four tools once each. The SDK checks every successful tool
result's `structuredContent` against the tool's declared `outputSchema`, so a mismatch there is a gateway
bug and is reported as one, with the tool, the offending field and the schema it broke.

Anything the SDK logs at WARNING or above is a failure too (for example "Session termination failed: 202"
when a clean disconnect is not answered as the SDK expects), so a client that complains fails the test.

Prints one `ok:` line per passed check on stdout; on the first failure prints `FAIL: …` on stderr and
exits 1 (2 for bad usage).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import sys
import traceback
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client, MCPError
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, Tool
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

EXPECTED_TOOLS = (
    "list_database_connections",
    "query_database",
    "validate_sql",
    "list_tables",
    "describe_table",
    "server_info",
)
# The handshake-era revisions the gateway negotiates through `initialize` (DECISIONS.md).
HANDSHAKE_PROTOCOLS = ("2025-06-18", "2025-11-25")
CUSTOMERS = 2500
# Python 3.10 (which the SDK supports) has no built-in exception groups; there isinstance(x, ()) is False.
EXCEPTION_GROUP = getattr(builtins, "BaseExceptionGroup", ())


class Failure(Exception):
    """A check failed; the message says which and what was seen."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


def ok(mode: str, message: str) -> None:
    print(f"ok: [{mode}] {message}", flush=True)


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


async def call(client: Client, tools: dict[str, Tool], name: str, arguments: dict[str, Any]) -> CallToolResult:
    """Calls a tool; turns the SDK's outputSchema rejection into a precise gateway-bug report."""
    try:
        return await client.call_tool(name, arguments)
    except RuntimeError as e:
        message = str(e)
        if "structured content" not in message and "Invalid schema for tool" not in message:
            raise
        # The SDK raises `RuntimeError(...) from jsonschema.ValidationError`; the cause knows the field.
        cause = e.__cause__
        detail = [f"GATEWAY BUG: the Python MCP SDK rejected the result of tool {name!r}: {message}"]
        if cause is not None and hasattr(cause, "absolute_path"):
            field = "/".join(str(p) for p in cause.absolute_path) or "(root)"
            rule = "/".join(str(p) for p in cause.absolute_schema_path)
            detail.append(f"field: structuredContent/{field}")
            detail.append(f"failed schema rule: {rule} (validator {cause.validator!r} = {cause.validator_value!r})")
            detail.append(f"offending value: {dump(cause.instance)}")
            detail.append(f"sub-schema: {dump(cause.schema)}")
        tool = tools.get(name)
        detail.append(f"declared outputSchema: {dump(tool.output_schema if tool else None)}")
        detail.append(f"arguments: {dump(arguments)}")
        raise Failure("\n".join(detail)) from e


async def list_all_tools(client: Client) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    cursor: str | None = None
    # Bounded, so a server whose cursor never ends fails the test instead of hanging it.
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        tools.update((t.name, t) for t in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            return tools
    raise Failure("tools/list still returned a next cursor after 100 pages")


@asynccontextmanager
async def connect(target: tuple[str, str, str], mode: str):
    """A connected SDK client: over streamable HTTP (`("http", url, key)`) or by starting
    `sluice stdio` (`("stdio", binary, data_dir)`)."""
    kind, first, second = target
    if kind == "stdio":
        server = StdioServerParameters(command=first, args=["stdio", "--data-dir", second])
        async with Client(stdio_client(server), mode=mode) as client:
            yield client
        return
    # The SDK takes headers through the HTTP client it is handed; the timeouts are the SDK's own defaults
    # (30 s, and 300 s to read a response stream).
    headers = {"Authorization": f"Bearer {second}"}
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        async with Client(streamable_http_client(first, http_client=http), mode=mode) as client:
            yield client


async def scenario(target: tuple[str, str, str], mode: str) -> None:
    async with connect(target, mode) as client:
        session = client.session
        if mode == "legacy":
            check(session.initialize_result is not None, "legacy mode connected without initialize")
            check(
                client.protocol_version in HANDSHAKE_PROTOCOLS,
                f"initialize negotiated {client.protocol_version!r}, expected one of {HANDSHAKE_PROTOCOLS}",
            )
            how = "initialize"
        else:
            # The gateway answers `server/discover` (rmcp's newest revision), so the probe settles on a
            # 2026-era version; a fallback to initialize would be fine too, as long as it lands somewhere.
            if session.discover_result is not None:
                check(
                    client.protocol_version in MODERN_PROTOCOL_VERSIONS,
                    f"discover adopted {client.protocol_version!r}, not one of {MODERN_PROTOCOL_VERSIONS}",
                )
                how = "server/discover"
            else:
                check(session.initialize_result is not None, "auto mode connected without discover or initialize")
                how = "initialize (after the discover probe)"
        info = client.server_info
        check(info is not None and info.name == "sluice", f"serverInfo is {info!r}, expected name 'sluice'")
        ok(mode, f"{how}: {info.name} {info.version}, protocol {client.protocol_version}")

        tools = await list_all_tools(client)
        missing = [name for name in EXPECTED_TOOLS if name not in tools]
        check(not missing, f"tools/list lacks {missing}; it has {sorted(tools)}")
        for name in EXPECTED_TOOLS:
            schema = tools[name].output_schema
            check(schema is not None, f"tool {name!r} declares no outputSchema")
            check(schema.get("type") == "object", f"tool {name!r} outputSchema root is not an object: {dump(schema)}")
        ok(mode, f"tools/list: {len(tools)} tools, the six expected ones each with an outputSchema")

        args = {"connection_name": "demo", "sql": "SELECT count(*) AS n FROM customers"}
        result = await call(client, tools, "query_database", args)
        check(not result.is_error, f"query_database returned isError: {text_of(result)}")
        structured = result.structured_content
        check(isinstance(structured, dict), f"query_database has no structuredContent object: {structured!r}")
        check(
            structured.get("rows") == [[CUSTOMERS]],
            f"query_database rows are {structured.get('rows')!r}, expected [[{CUSTOMERS}]]",
        )
        ok(mode, f"query_database: rows == [[{CUSTOMERS}]], structuredContent valid against its outputSchema")

        args = {"connection_name": "demo", "sql": "DROP TABLE customers"}
        result = await call(client, tools, "query_database", args)
        check(result.is_error, f"DROP TABLE was not refused: {text_of(result)!r} {result.structured_content!r}")
        check(
            "Refused by governance" in text_of(result),
            f"refusal text lacks 'Refused by governance': {text_of(result)!r}",
        )
        ok(mode, "query_database: DROP TABLE refused by governance (isError)")

        args = {"connection_name": "demo", "table_name": "orders"}
        result = await call(client, tools, "describe_table", args)
        check(not result.is_error, f"describe_table returned isError: {text_of(result)}")
        structured = result.structured_content
        check(isinstance(structured, dict), f"describe_table has no structuredContent object: {structured!r}")
        fks = structured.get("foreign_keys")
        check(isinstance(fks, list) and fks, f"describe_table orders has no foreign_keys: {dump(structured)}")
        to_customers = [
            fk
            for fk in fks
            if fk.get("columns") == ["customer_id"]
            and str(fk.get("references", "")).split(".")[-1] == "customers"
            and fk.get("referenced_columns") == ["customer_id"]
        ]
        check(bool(to_customers), f"no foreign key orders(customer_id) -> customers(customer_id) in {dump(fks)}")
        ok(mode, f"describe_table orders: {len(fks)} foreign keys, including customer_id -> customers")

        # The SDK validates every successful result against its tool's outputSchema, so calling the other
        # four tools once each checks their schemas too.
        others = {
            "list_database_connections": {},
            "list_tables": {"connection_name": "demo"},
            "validate_sql": {"connection_name": "demo", "sql": "SELECT * FROM orders"},
            "server_info": {},
        }
        for name, args in others.items():
            result = await call(client, tools, name, args)
            check(not result.is_error, f"{name} returned isError: {text_of(result)}")
            check(isinstance(result.structured_content, dict), f"{name} has no structuredContent object")
        ok(mode, f"{', '.join(others)}: structuredContent valid against their outputSchemas")


class Complaints(logging.Handler):
    """Collects every record logged at WARNING or above, by the SDK or anything it uses."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def describe(error: BaseException) -> str:
    """A readable reason, unwrapping the exception groups anyio's task groups wrap errors in."""
    if isinstance(error, Failure):
        return str(error)
    if isinstance(error, EXCEPTION_GROUP):
        return "\n".join(describe(e) for e in error.exceptions)
    trace = "".join(traceback.format_exception(error)).rstrip()
    if isinstance(error, MCPError):
        # The SDK's message alone ("Server returned an error response") hides the code and the server's words.
        return f"{trace}\nMCP error {error.code}: {error.message} (data: {error.error.data!r})"
    return trace


def failures_in(error: BaseException) -> list[Failure]:
    if isinstance(error, Failure):
        return [error]
    if isinstance(error, EXCEPTION_GROUP):
        return [f for e in error.exceptions for f in failures_in(e)]
    return []


async def main(target: tuple[str, str, str]) -> int:
    complaints = Complaints()
    logging.getLogger().addHandler(complaints)
    for mode in ("auto", "legacy"):
        try:
            await scenario(target, mode)
        except Exception as e:  # noqa: BLE001 - every failure is reported, with its trace when unexpected
            # A Failure raised inside the SDK's task groups arrives wrapped; show it alone when it is there.
            found = failures_in(e)
            reason = "\n".join(str(f) for f in found) if found else describe(e)
            print(f"FAIL: [{mode}] {reason}", file=sys.stderr, flush=True)
            return 1
    if complaints.records:
        print("FAIL: the SDK logged warnings:\n" + "\n".join(complaints.records), file=sys.stderr, flush=True)
        return 1
    ok("both", "the SDK logged no warning (clean disconnects included)")
    print("ok: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--stdio":
        target = ("stdio", sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and not sys.argv[1].startswith("-"):
        target = ("http", sys.argv[1], sys.argv[2])
    else:
        print("usage: client.py URL KEY | client.py --stdio SLUICE_BINARY DATA_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(target)))
