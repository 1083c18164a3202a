"""MCP servers' tools for any model: `tools=[ds.mcp_stdio(...), ds.mcp_http(...)]`.

A server is a small frozen spec (`McpStdio`, `McpHttp`) or an entry of the `mcpServers` config
that Claude Desktop, Cherry Studio and others use. When a reply begins, `McpSessions` starts
(stdio) or reaches (streamable HTTP) each server through the official `mcp` SDK, on an event loop
in a thread of its own: the chat layer is synchronous and may run inside Jupyter's own loop.
Each tool becomes a `Tool` described by its input schema, so its calls are checked, timed,
limited and reported like a Python function's; sessions and processes are closed when the reply
ends, however it ends. Nothing here imports the SDK until a server is opened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, wait
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import ConfigurationError, McpServerError, clip, redact, register_secret
from .tools import MAX_RESULT_CHARS, Tool, timeout_message

#: Seconds a server may take to start and list its tools (`npx` may download it first).
START_TIMEOUT = 60.0
#: Seconds the sessions may take to close before what is left is cancelled (a stdio server
#: gets 2 s to exit once its stdin closes, then SIGTERM, then SIGKILL: the SDK's sequence).
CLOSE_TIMEOUT = 10.0
#: Pages of `tools/list` read at most (a cursor that never ends cannot hang a reply).
MAX_PAGES = 100
#: Longest tool description passed on to the model (a server's text fills its context).
MAX_DESCRIPTION = 1024
#: The end of a stdio server's stderr quoted in an error.
OUTPUT_BYTES, OUTPUT_LINES = 4000, 12
#: Header, environment and query names whose values are secrets (never shown).
_SECRET_NAME = re.compile(r"(?i)auth|token|key|secret|passw|cookie|session|credential|sig")
#: `type` values of mcpServers entries.
_STDIO_TYPES = {"stdio"}
_HTTP_TYPES = {"http", "streamable-http", "streamable_http", "streamablehttp"}
_INSTALL = "MCP servers in tools= need the official MCP SDK: pip install 'dskit[mcp]'"

@dataclass(frozen=True, repr=False)
class McpStdio:
    """An MCP server run as a process that speaks over its stdin and stdout."""

    command: str
    args: tuple[str, ...] = ()
    #: Variables set for the server, over the SDK's safe few (PATH, HOME, USER, ...).
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    name: str = ""
    #: Put before each of its tools' names (two servers with the same tool names).
    prefix: str = ""

    def describe(self) -> str:
        """The command line, secrets replaced."""
        return redact(shlex.join([self.command, *self.args]))

    def __repr__(self) -> str:
        extra = "".join([f", env={{{', '.join(f'{k!r}: ***' for k, _ in self.env)}}}"
                         if self.env else "", f", cwd={self.cwd!r}" if self.cwd else "",
                         f", prefix={self.prefix!r}" if self.prefix else ""])
        return redact(f"McpStdio(name={self.name!r}, command={self.describe()!r}{extra})")


@dataclass(frozen=True, repr=False)
class McpHttp:
    """An MCP server reached over streamable HTTP."""

    url: str
    #: Sent with every request (an `Authorization` token); never shown.
    headers: tuple[tuple[str, str], ...] = field(default=())
    name: str = ""
    prefix: str = ""

    def describe(self) -> str:
        """The URL, its secrets (a password, a token in the query) replaced."""
        parts = urlsplit(self.url)
        query = urlencode([(k, "***" if _SECRET_NAME.search(k) else v)
                           for k, v in parse_qsl(parts.query, keep_blank_values=True)])
        return redact(urlunsplit(parts._replace(query=query)))

    def __repr__(self) -> str:
        extra = "".join([f", headers={{{', '.join(f'{k!r}: ***' for k, _ in self.headers)}}}"
                         if self.headers else "",
                         f", prefix={self.prefix!r}" if self.prefix else ""])
        return redact(f"McpHttp(name={self.name!r}, url={self.describe()!r}{extra})")


McpServer = McpStdio | McpHttp


def mcp_stdio(command: str | os.PathLike[str], *args: str | os.PathLike[str],
              env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
              name: str | None = None, prefix: str = "") -> McpStdio:
    """An MCP server started as a process for each reply (`tools=[ds.mcp_stdio("uvx",
    "mcp-server-time")]`); `env` adds variables (values never shown), `name` labels its calls
    (default: from the command), `prefix` goes before its tools' names."""
    command = os.fspath(command) if isinstance(command, os.PathLike) else command
    if not isinstance(command, str) or not command.strip():
        raise ConfigurationError(f"mcp_stdio needs the command that starts the server, not "
                                 f"{command!r}")
    words = [os.fspath(a) if isinstance(a, os.PathLike) else a for a in args]
    if any(not isinstance(a, str) for a in words):
        raise ConfigurationError(f"mcp_stdio's arguments must be strings, not {words!r}")
    if not words and " " in command.strip() and shutil.which(command) is None:
        command, *words = shlex.split(command)  # a whole command line, split like a shell
    pairs = _pairs(env, "env")
    for key, value in pairs:
        if _SECRET_NAME.search(key):
            register_secret(value)
    return McpStdio(command=command, args=tuple(words), env=pairs,
                    cwd=os.fspath(cwd) if cwd is not None else None,
                    name=_name(name, _stdio_name(command, words)), prefix=_prefix(prefix))


def mcp_http(url: str, headers: Mapping[str, str] | None = None, *, name: str | None = None,
             prefix: str = "") -> McpHttp:
    """An MCP server reached over streamable HTTP (`ds.mcp_http("http://127.0.0.1:8000/mcp",
    headers={"Authorization": "Bearer …"})`); header values are never shown."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"mcp_http needs an http:// or https:// URL (the server's "
                                 f"streamable HTTP endpoint, often ending in /mcp), not {url!r}")
    pairs = _pairs(headers, "headers")
    if not all(k.isascii() and v.isascii() for k, v in pairs):
        raise ConfigurationError("mcp_http: HTTP header names and values must be ASCII text")
    for key, value in pairs:
        if _SECRET_NAME.search(key) or value.lower().startswith(("bearer ", "basic ")):
            register_secret(value)
            register_secret(value.split(" ", 1)[-1])
    for key, value in parse_qsl(urlsplit(url).query):
        if _SECRET_NAME.search(key):
            register_secret(value)
    host = urlsplit(url).hostname or "server"
    return McpHttp(url=url, headers=pairs, name=_name(name, host), prefix=_prefix(prefix))


def _pairs(values: Mapping[str, str] | None, what: str) -> tuple[tuple[str, str], ...]:
    if values is None:
        return ()
    if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
        raise ConfigurationError(f"{what} must be a dict of names to text, not {values!r:.80}")
    return tuple((k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items())


def _name(given: str | None, default: str) -> str:
    if given is None:
        return default
    if not isinstance(given, str) or not given.strip():
        raise ConfigurationError(f"name= must be a non-empty text, not {given!r}")
    return given.strip()


def model_name(name: str) -> str:
    """An MCP tool's name as models' APIs accept it: OpenAI-compatible servers refuse any but
    ^[A-Za-z0-9_-]{1,64}$, while MCP also allows dots (and servers send others)."""
    shown = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]
    if re.search(r"[A-Za-z0-9]", shown):
        return shown
    # Nothing readable left (a name in Chinese, say): a stable name; the description says more.
    return "tool_" + hashlib.sha256(name.encode()).hexdigest()[:8]


def _prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{0,32}", prefix):
        raise ConfigurationError(f"prefix={prefix!r}: use up to 32 letters, digits, _ . or -")
    return prefix


def _stdio_name(command: str, args: Sequence[str]) -> str:
    """`python server.py` → "server", `npx -y @scope/server-files@1` → "server-files"."""
    words = list(args)
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1]
    if "-c" in words or "-e" in words:  # code on the command line: no name in it
        return re.split(r"[/\\]", command)[-1]
    first = next((a for a in words if not a.startswith("-")), command)
    last = re.split(r"[/\\]", first.rstrip("/\\"))[-1] or command
    last = re.sub(r"(?<=.)@[^@]*$", "", last)  # a version: pkg@1.2
    return re.sub(r"\.(py|js|mjs|cjs|ts|exe)$", "", last) or command


def servers_of(item: Any) -> list[McpServer]:
    """The MCP servers `item` stands for: a spec, an `mcpServers` entry (`{"command": …,
    "args": […], "env": {…}}` or `{"url": …}`), `{"mcpServers": {name: entry}}` or `{name:
    entry}`; a `ConfigurationError` that shows the accepted shapes otherwise."""
    if isinstance(item, (McpStdio, McpHttp)):
        return [item]
    if isinstance(item, Mapping):
        if "mcpServers" in item:
            item = item["mcpServers"]
            if not isinstance(item, Mapping):
                raise ConfigurationError("mcpServers must map names to server entries")
        elif any(k in item for k in ("command", "url", "baseUrl", "serverUrl")):
            return _entry(item, item.get("name"))
        if item and all(isinstance(v, Mapping) for v in item.values()):
            return [s for key, entry in item.items() for s in _entry(entry, str(key))]
    raise ConfigurationError(
        f"tools= takes Python functions and MCP servers, not {item!r:.100}. An MCP server is "
        "ds.mcp_stdio(command, *args), ds.mcp_http(url), or an mcpServers entry as in Claude "
        'Desktop\'s config: {"command": "npx", "args": ["-y", "<package>"]} or '
        '{"url": "http://127.0.0.1:8000/mcp"}')


def _entry(entry: Mapping[str, Any], name: Any) -> list[McpServer]:
    """One mcpServers entry (Claude Desktop, Cherry Studio, VS Code shapes)."""
    if entry.get("disabled") is True or entry.get("isActive") is False:
        return []
    kind = str(entry.get("type") or entry.get("transport") or "").lower()
    url = entry.get("url") or entry.get("baseUrl") or entry.get("serverUrl")
    label = name if isinstance(name, str) and name.strip() else None
    if kind == "sse" or (kind and kind not in _STDIO_TYPES | _HTTP_TYPES):
        raise ConfigurationError(
            f"MCP server {label or ''!r}: transport {kind!r} is not supported; dskit speaks "
            "stdio and streamable HTTP (for a server that offers both, use its streamable "
            "HTTP URL, often ending in /mcp)")
    if entry.get("command") and url:
        raise ConfigurationError(f"MCP server {label or ''!r} has both a command and a URL: "
                                 "keep one")
    if entry.get("command"):
        args = entry.get("args") or []
        if not isinstance(args, list):
            raise ConfigurationError(f"MCP server {label or ''!r}: args must be a list of "
                                     f"strings, not {args!r:.80}")
        return [mcp_stdio(entry["command"], *map(str, args), env=entry.get("env"),
                          cwd=entry.get("cwd"), name=label)]
    if url:
        return [mcp_http(url, entry.get("headers"), name=label)]
    raise ConfigurationError(f"MCP server {label or ''!r} has neither a command nor a url: "
                             f"{sorted(entry)!r:.100}")


# --- results ------------------------------------------------------------------------------

def read_result(result: Any) -> Any:
    """A `CallToolResult` as a Python tool's return value: its structured content when there is
    one (`{"result": x}`, how SDKs wrap a value that is no object, is `x`), else its content
    blocks as text; either within `MAX_RESULT_CHARS`. `isError` raises `McpServerError`."""
    if getattr(result, "is_error", False):
        text = _blocks_text(result.content)
        raise McpServerError(text or "the tool reported an error without a message")
    value = getattr(result, "structured_content", None)
    if value is not None:
        if isinstance(value, dict) and set(value) == {"result"}:
            value = value["result"]
        return _bounded(value)
    return _bounded(_blocks_text(result.content))


def _blocks_text(blocks: Sequence[Any]) -> str:
    """Content blocks as text: text as it is (each clipped), the rest summarised."""
    parts = []
    for block in blocks:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(_bounded(block.text))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {block.mime_type}, {_decoded_size(block.data)} bytes]")
        elif kind == "resource":
            res = block.resource
            if hasattr(res, "text"):
                parts.append(f"[resource {res.uri}]\n{_bounded(res.text)}")
            else:
                parts.append(f"[resource {res.uri}, {res.mime_type or 'binary'}, "
                             f"{_decoded_size(res.blob)} bytes]")
        elif kind == "resource_link":
            parts.append(f"[resource link {block.uri}: {block.name}]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    return "\n".join(parts)


def _decoded_size(data: str) -> int:
    """Bytes in base64 text, without decoding it."""
    return len(data) * 3 // 4 - data[-2:].count("=")


def _bounded(value: Any) -> Any:
    """`value` if its text fits `MAX_RESULT_CHARS`, else its text cut there, saying so."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (ValueError, TypeError, RecursionError):
            text = str(value)
        if len(text) <= MAX_RESULT_CHARS:
            return value
    if len(text) <= MAX_RESULT_CHARS:
        return text
    note = f"… [cut: {len(text):,} characters in all]"
    return text[:MAX_RESULT_CHARS - len(note)] + note


# --- sessions -----------------------------------------------------------------------------

def require_sdk() -> None:
    """Refuse, with the fix, when the official MCP SDK is not installed."""
    try:
        import mcp  # noqa: F401  (heavy: only when a server is opened)
    except ImportError:
        raise ConfigurationError(_INSTALL) from None


@dataclass
class _Job:
    """One call handed to the loop thread; its future gets the result or the error."""

    name: str
    arguments: dict[str, Any]
    future: Future[Any] = field(default_factory=Future)

    def fail(self, message: str) -> None:
        if not self.future.done():
            self.future.set_exception(McpServerError(message))


class _Link:
    """One server's session as the loop thread keeps it."""

    def __init__(self, server: McpServer) -> None:
        self.server = server
        self.ready: Future[list[Any]] = Future()  # the listed tools, or the start's error
        self.task: Future[Any] | None = None
        self.inbox: Any = None  # the send side of the calls' stream
        self.scope: Any = None  # the running call's cancel scope
        self.life: Any = None  # the whole session's cancel scope
        self.job: _Job | None = None
        self.failure = ""  # why the server stopped; "" while it runs
        self.closing = False
        #: A stdio server's stderr (opened by `McpSessions.open`, closed by its `close`).
        self.errlog: IO[bytes] | None = None

    def output(self) -> str:
        """The last lines the server wrote to stderr, as an error's tail ("" if none)."""
        if self.errlog is None:
            return ""
        try:
            self.errlog.seek(0, 2)
            size = self.errlog.tell()
            self.errlog.seek(max(0, size - OUTPUT_BYTES))
            lines = self.errlog.read().decode("utf-8", "replace").splitlines()
        except (OSError, ValueError):
            return ""
        lines = [line for line in lines[1 if size > OUTPUT_BYTES else 0:] if line.strip()]
        if not lines:
            return ""
        shown = "\n  ".join(clip(line, 300) for line in lines[-OUTPUT_LINES:])
        return f". Its last output (stderr):\n  {shown}"


class McpSessions:
    """The MCP servers of one reply: open on an event loop in a thread of its own, every call
    bounded by `timeout`, all closed by `close()`."""

    def __init__(self, servers: Sequence[McpServer], timeout: float) -> None:
        self.timeout = timeout
        self.links = [_Link(s) for s in servers]
        self._portal: Any = None
        self._portal_cm: Any = None

    def open(self) -> list[Tool]:
        """Start every server at once, list their tools; any failure closes them all."""
        require_sdk()
        for link in self.links:
            if isinstance(link.server, McpStdio):
                _check_command(link.server)
        from anyio.from_thread import start_blocking_portal

        # Without a handler of its own, the SDK's warnings would print in the notebook
        # (logging's last resort); an application that configures logging still gets them.
        sdk_log = logging.getLogger("mcp")
        if not any(isinstance(h, logging.NullHandler) for h in sdk_log.handlers):
            sdk_log.addHandler(logging.NullHandler())
        try:
            for link in self.links:
                if isinstance(link.server, McpStdio):
                    # Captured, not shown: a server's logging must not spam the notebook; its
                    # end is quoted when it fails. Appended to (O_APPEND), so reading it moves
                    # no write offset.
                    link.errlog = tempfile.TemporaryFile("a+b")  # noqa: SIM115 (see close())
            self._portal_cm = start_blocking_portal("asyncio", name="dskit-mcp")
            self._portal = self._portal_cm.__enter__()
            for link in self.links:
                link.task = self._portal.start_task_soon(self._serve, link)
            wait([link.ready for link in self.links], timeout=START_TIMEOUT + CLOSE_TIMEOUT)
            tools = []
            for link in self.links:
                if not link.ready.done():
                    raise McpServerError(f"the MCP server {link.server.name!r} "
                                         f"({link.server.describe()}) did not list its tools "
                                         f"within {START_TIMEOUT:g} s")
                tools += [self._tool(link, t) for t in link.ready.result()]
            return tools
        except BaseException:
            self.close()
            raise

    def _tool(self, link: _Link, listed: Any) -> Tool:
        """One listed MCP tool as a `Tool` that calls it through this session."""
        remote = listed.name
        schema = listed.input_schema if isinstance(listed.input_schema, dict) else {}

        def function(**arguments: Any) -> Any:
            return self.call(link, remote, arguments)

        description = clip(listed.description or getattr(listed, "title", None) or "",
                           MAX_DESCRIPTION)
        return Tool.from_schema(model_name(link.server.prefix + remote), description, schema,
                                function, link.server.name)

    def call(self, link: _Link, name: str, arguments: dict[str, Any]) -> Any:
        """Call a tool and wait for its value; `McpServerError` says why there is none."""
        if link.failure:
            raise McpServerError(f"the MCP server {link.server.name!r} stopped earlier in this "
                                 f"reply ({link.failure}); its tools cannot be called")
        portal = self._portal
        if portal is None or link.inbox is None:
            raise McpServerError(f"the MCP server {link.server.name!r} is closed: the reply "
                                 "ended")
        job = _Job(name, arguments)
        try:
            portal.call(link.inbox.send_nowait, job)
        except Exception:  # the session, or the loop, has ended meanwhile
            raise McpServerError(f"the MCP server {link.server.name!r} stopped "
                                 f"({link.failure or 'its session ended'})") from None
        return job.future.result()

    async def _serve(self, link: _Link) -> None:
        """Open one session, list its tools, then run its calls one at a time until closed."""
        import anyio
        from mcp import Client

        send, receive = anyio.create_memory_object_stream[_Job](math.inf)
        link.inbox = send
        # Cancelled by `close()` only while the server starts (a Stop then); once it runs, a
        # close lets the session end in order.
        with anyio.CancelScope() as life:
            link.life = life
            try:
                transport = _stdio(link) if isinstance(link.server, McpStdio) else \
                    _http(link.server)
                async with Client(cast(Any, transport),
                                  read_timeout_seconds=START_TIMEOUT) as client:
                    link.ready.set_result(await _list_tools(client, link.server))
                    async with receive:
                        async for job in receive:
                            await self._run(client, link, job)
                            if link.failure:
                                break
            except Exception as exc:  # a crash, a refused connection: the session is over
                link.failure = link.failure or _why(exc)
            finally:
                send.close()
                if not link.ready.done():
                    link.ready.set_exception(McpServerError(_start_failure(link)))
                stopped = f"the MCP server {link.server.name!r} stopped during the call " \
                    f"({link.failure or 'the reply ended'}){link.output()}"
                if link.job is not None:
                    link.job.fail(stopped)
                while True:
                    try:
                        receive.receive_nowait().fail(stopped)
                    except Exception:  # empty, or closed
                        break

    async def _run(self, client: Any, link: _Link, job: _Job) -> None:
        """One call, bounded by the timeout and cancelled when the reply ends."""
        import anyio
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        name = link.server.name
        if link.closing:
            job.fail(f"the MCP server {name!r} is closed: the reply ended")
            return
        link.job = job
        result: Any = None
        with anyio.CancelScope() as scope:
            link.scope = scope
            try:
                with anyio.fail_after(self.timeout):
                    # The SDK's own limit a little later: the time limit is this one's.
                    result = await client.call_tool(job.name, job.arguments,
                                                    read_timeout_seconds=self.timeout + 5)
            except TimeoutError:
                job.fail(timeout_message(self.timeout))
            except MCPError as exc:
                if exc.code == CONNECTION_CLOSED:
                    link.failure = "it closed the connection"
                    job.fail(f"the MCP server {name!r} stopped during the call (it closed the "
                             f"connection){link.output()}")
                else:
                    job.fail(f"the MCP server {name!r} refused the call: {clip(str(exc), 500)}")
            except Exception as exc:  # a result that breaks the protocol, a transport error
                job.fail(f"the call to the MCP server {name!r} failed: {_why(exc)}")
        link.scope = None
        if scope.cancelled_caught:
            job.fail(f"the reply ended before the MCP server {name!r} returned")
        elif not job.future.done():
            try:
                job.future.set_result(read_result(result))
            except McpServerError as exc:
                job.future.set_exception(exc)
        link.job = None

    def close(self) -> None:
        """End every call and session, then the loop's thread (bounded: `CLOSE_TIMEOUT`,
        after which what is left is cancelled)."""
        portal, portal_cm = self._portal, self._portal_cm
        self._portal = self._portal_cm = None
        try:
            if portal is not None:
                for link in self.links:
                    with suppress(RuntimeError):  # the loop has ended
                        portal.call(_stop, link)
                tasks = [link.task for link in self.links if link.task is not None]
                if wait(tasks, timeout=CLOSE_TIMEOUT).not_done:
                    with suppress(RuntimeError):
                        portal.call(portal.stop, True)
        finally:
            if portal_cm is not None:
                portal_cm.__exit__(None, None, None)  # joins the loop's thread
            for link in self.links:
                if link.job is not None:
                    link.job.fail(f"the MCP server {link.server.name!r} is closed")
                if link.errlog is not None:
                    link.errlog.close()


def _stop(link: _Link) -> None:
    """In the loop: refuse further calls, end the running one, let the session close."""
    link.closing = True
    if not link.ready.done() and link.life is not None:
        link.failure = link.failure or "the reply was stopped while it started"
        link.life.cancel()
    if link.inbox is not None:
        link.inbox.close()
    if link.scope is not None:
        link.scope.cancel()


async def _list_tools(client: Any, server: McpServer) -> list[Any]:
    """Every tool the server lists, page after page."""
    tools: list[Any] = []
    cursor = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools
    raise McpServerError(f"the MCP server {server.name!r} lists its tools over more than "
                         f"{MAX_PAGES} pages")


def _stdio(link: _Link) -> Any:
    """The SDK's stdio transport, the server's stderr going to `link.errlog`."""
    from mcp.client.stdio import StdioServerParameters, stdio_client

    server = cast(McpStdio, link.server)
    params = StdioServerParameters(command=server.command, args=list(server.args),
                                   env=dict(server.env) or None, cwd=server.cwd)
    return stdio_client(params, errlog=cast(Any, link.errlog))


@asynccontextmanager
async def _http(server: McpHttp) -> Any:
    """The SDK's streamable HTTP transport, with the server's headers on every request."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    # The SDK's own timeouts: 30 s to connect or send, 300 s between bytes of a stream.
    async with httpx2.AsyncClient(headers=dict(server.headers),
                                  timeout=httpx2.Timeout(30.0, read=300.0)) as http, \
            streamable_http_client(server.url, http_client=http) as streams:
        yield streams


def _check_command(server: McpStdio) -> None:
    """Refuse a command that cannot be found, before anything starts."""
    command = server.command
    if "/" in command or os.sep in command:
        found = (Path(server.cwd or ".") / command).exists()
    else:
        found = shutil.which(command, path=dict(server.env).get("PATH")) is not None
    if not found:
        raise McpServerError(
            f"cannot start the MCP server {server.name!r}: the command {command!r} is not "
            "found. Install it (npx comes with Node.js, uvx with uv), give its full path, or "
            "check cwd=")


def _start_failure(link: _Link) -> str:
    """Why a server did not start, with its last output and what to check."""
    server = link.server
    why = link.failure or "it ended before listing its tools"
    if isinstance(server, McpHttp):
        return (f"cannot use the MCP server {server.name!r} at {server.describe()}: {why}. Check "
                "that it runs, the URL (a streamable HTTP endpoint, often ending in /mcp) and "
                "the headers (a token?)")
    return (f"the MCP server {server.name!r} ({server.describe()}) did not start: {why}"
            f"{link.output()}\nRun the command in a terminal to see why, or check env= and cwd=")


def _why(exc: BaseException) -> str:
    """An error in a line, from the first leaf of nested exception groups."""
    for _ in range(10):
        inner = getattr(exc, "exceptions", None)
        if not inner:
            break
        exc = inner[0]
    text = str(exc).strip()
    return clip(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, 300)

