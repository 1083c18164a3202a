"""The knowledge-base MCP server through the official SDK: its tools in process, and the HTTP
server in a thread with `dskit serve`'s rules (loopback, bearer token, Host and Origin)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client

import dskit as ds
from dskit.errors import ConfigurationError
from dskit.kb import KnowledgeBase
from dskit.serve.kb_tools import KbTools
from dskit.serve.mcp_server import build_server, endpoint
from tests.aio import run_async
from tests.test_kb import HashEmbedder

#: The SDK reads a streamed reply for up to this long (its own default).
LONG = httpx2.Timeout(30, read=300)
TOKEN = "mcp-test-token-7f3a"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    kb = KnowledgeBase("笔记", data_dir=tmp_path / "home", embed_model=HashEmbedder())
    kb.add(text="本周五晚上六点团队聚餐。", name="通知.md", progress=False)
    kb.close()
    return tmp_path / "home"


@pytest.fixture
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSKIT_SERVE_TOKEN", raising=False)


def in_process(tools: KbTools, *calls: tuple[str, dict[str, Any]]) -> tuple[Any, list[Any]]:
    """The tool list and each call's result, through the SDK's own client in this process."""
    async def run() -> tuple[Any, list[Any]]:
        async with Client(build_server(tools)) as client:
            listed = await client.list_tools()
            return listed, [await client.call_tool(name, args) for name, args in calls]
    return run_async(run)


def test_the_tools_through_the_sdk_client(home: Path) -> None:
    listed, (kbs, unknown, empty) = in_process(
        KbTools(home), ("list_knowledge_bases", {}), ("search", {"kb": "旧笔记", "query": "x"}),
        ("search", {"kb": "笔记", "query": ""}))
    assert [t.name for t in listed.tools] == ["list_knowledge_bases", "search", "ask"]
    search = listed.tools[1]
    assert search.input_schema["required"] == ["kb", "query"] and search.output_schema
    assert search.annotations.read_only_hint is True and "中文" in search.description
    # The SDK client checked the data against the tool's output schema.
    assert not kbs.is_error and kbs.structured_content["knowledge_bases"][0]["name"] == "笔记"
    assert "笔记: 1 files" in kbs.content[0].text
    assert unknown.is_error and unknown.structured_content is None
    assert "no knowledge base '旧笔记'" in unknown.content[0].text
    assert "call list_knowledge_bases" in unknown.content[0].text
    assert empty.is_error and "query is empty" in empty.content[0].text
    listed, _ = in_process(KbTools(home, add_from=[home.parent]))
    add = listed.tools[-1]
    assert add.name == "add_files" and add.annotations.read_only_hint is False


@pytest.fixture
def http_server(home: Path, no_env_token: None) -> Iterator[ds.serve.McpServer]:
    server = ds.serve.start_mcp("笔记", data_dir=home, token=TOKEN)
    yield server
    server.stop()


def test_http_needs_the_token_and_answers_with_it(http_server: ds.serve.McpServer) -> None:
    url = http_server.url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
    assert TOKEN not in repr(http_server)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = httpx.post(url, json=ping, headers=headers)
        assert r.status_code == 401 and "Authorization: Bearer <token>" in r.text
        assert TOKEN not in r.text
    good = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(url, json=ping, headers={**good, "Host": "attacker.example:80"})
    assert r.status_code == 403  # DNS rebinding: only loopback names
    r = httpx.post(url, json=ping, headers={**good, "Origin": "https://attacker.example"})
    assert r.status_code == 403  # a page from another site
    big = {**ping, "params": {"query": "聚餐" * 400_000}}  # 2.4 MB of UTF-8, over the 1 MB limit
    r = httpx.post(url, json=big, headers=good)
    assert r.status_code == 413 and "send less" in r.text and "dskit serve" not in r.text

    async def run() -> tuple[Any, Any]:
        async with httpx2.AsyncClient(headers=good, timeout=LONG) as http, \
                streamable_http_client(url, http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            info = await session.initialize()
            return info, await session.call_tool("list_knowledge_bases", {})

    info, listed = run_async(run)
    assert info.server_info.name == "dskit-kb" and "知识库" in (info.instructions or "")
    assert [k["name"] for k in listed.structured_content["knowledge_bases"]] == ["笔记"]


def test_binding_follows_dskit_serves_rules(home: Path, no_env_token: None) -> None:
    with pytest.raises(ConfigurationError, match=r"refusing to listen on 0\.0\.0\.0.*--expose"):
        ds.serve.start_mcp(data_dir=home, host="0.0.0.0")
    with pytest.raises(ConfigurationError, match=r"refusing to serve knowledge bases on 0\.0\.0\.0 "
                       r"without a token.*DSKIT_SERVE_TOKEN"):
        ds.serve.start_mcp(data_dir=home, host="0.0.0.0", expose=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"port {port} on 127.0.0.1 is already in "
                           f"use: .*`dskit mcp --http --port {port + 1}`"):
            ds.serve.start_mcp(data_dir=home, port=port)
    assert endpoint("0.0.0.0", 8765) == "http://127.0.0.1:8765/mcp"
    assert endpoint("::1", 8765) == "http://[::1]:8765/mcp"
