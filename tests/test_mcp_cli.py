"""`dskit mcp` as MCP clients run it: a real subprocess, over stdio and over streamable HTTP,
called by the official MCP SDK's client, on a knowledge base of Chinese notes embedded by
the real MiniLM."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from dskit.cli import main
from dskit.kb import KnowledgeBase
from dskit.reply import CITATION
from tests import kbfiles
from tests.aio import run_async

ROOT = Path(__file__).resolve().parents[1]
#: The SDK reads a streamed reply for up to this long (its own default).
LONG = httpx2.Timeout(30, read=300)
TOKEN = "mcp-cli-token-91c2"
#: The notice's answer is past its start: a search must show the passage around it.
FILLER = "项目评审会改到周三上午十点，在三楼会议室，请各位准时参加并带上材料。" * 3
DINNER = "本周五晚上六点团队聚餐，地点在公司附近的湘菜馆。"


def listing(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under `root`: size and SHA-256 (what "creates nothing" compares)."""
    return {str(p.relative_to(root)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the knowledge base 笔记: a notice and tea notes, in Chinese."""
    root = tmp_path_factory.mktemp("mcp")
    docs = root / "docs"
    kbfiles.write(docs / "通知.md", f"{FILLER}\n{DINNER}\n")
    kbfiles.write(docs / "茶叶笔记.txt", "西湖龙井是绿茶，产自杭州。\n"
                  "冲泡龙井的水温以八十度左右为宜，水太烫会把嫩芽烫熟。\n"
                  "普洱茶适合用一百度的沸水冲泡。\n")
    kb = KnowledgeBase("笔记", data_dir=root / "home")
    assert set(kb.add(docs, progress=False)["status"]) == {"added"}
    kb.close()
    return root / "home"


@pytest.fixture
def home(built: Path, tmp_path: Path) -> Path:
    """A copy of the built data directory, for a test that may change it."""
    return Path(shutil.copytree(built, tmp_path / "home"))


def environment(home: Path, **extra: str) -> dict[str, str]:
    """The server's environment: this checkout, the data directory, no Ollama, no token."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if k != "DSKIT_SERVE_TOKEN"}
    return {**env, "PYTHONPATH": str(ROOT), "DSKIT_KB_DIR": str(home), "OLLAMA_HOST": nowhere,
            **extra}


def over_stdio(home: Path, args: list[str], calls: list[tuple[str, dict[str, Any]]]
               ) -> tuple[list[str], list[Any]]:
    """Start `dskit mcp ARGS` as a client does, list its tools, make the calls; the tool names
    and the results."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "dskit", "mcp", *args],
                                   env=environment(home))

    async def run() -> tuple[list[str], list[Any]]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            names = [t.name for t in (await session.list_tools()).tools]
            return names, [await session.call_tool(n, a, read_timeout_seconds=300)
                           for n, a in calls]
    return run_async(run)


@pytest.mark.subprocess
@pytest.mark.model
def test_stdio_searches_in_chinese_reports_errors_and_creates_nothing(built: Path) -> None:
    before = listing(built.parent)
    names, (kbs, found, unknown, empty) = over_stdio(built, [], [
        ("list_knowledge_bases", {}),
        ("search", {"kb": "笔记", "query": "团队聚餐是什么时候？", "top_k": 2}),
        ("search", {"kb": "旧笔记", "query": "聚餐"}),
        ("search", {"kb": "笔记", "query": "   "})])
    assert names == ["list_knowledge_bases", "search", "ask"]  # read-only: no add_files
    [kb] = kbs.structured_content["knowledge_bases"]
    assert kb["name"] == "笔记" and kb["files"] == 2 and kb["passages"] >= 2
    assert kb["embedding_model"].endswith("all-minilm:l6-v2") and kb["updated"]
    first = found.structured_content["passages"][0]
    assert first["file"] == "docs/通知.md" and DINNER in first["text"]
    assert 0 < first["score"] <= 1 and first["page"] is None
    assert (first["line_start"], first["line_end"]) == (1, 2) and first["location"] == "lines 1–2"
    shown = found.content[0].text
    assert "[1] score" in shown and "docs/通知.md (lines 1–2)" in shown
    said = unknown.content[0].text
    assert unknown.is_error and "no knowledge base '旧笔记' (known: '笔记')" in said
    assert "call list_knowledge_bases" in said
    assert empty.is_error and "query is empty" in empty.content[0].text
    assert listing(built.parent) == before  # no new file, no -wal/-shm left, nothing changed


@pytest.mark.subprocess
@pytest.mark.model
def test_http_token_and_add_files(home: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    kbfiles.write(inbox / "会议纪要.md", "会议决定：新版本在下周三发布，负责人是张伟。\n")
    (inbox / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    kbfiles.write(tmp_path / "secret.txt", "不在允许的文件夹里")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dskit", "mcp", "--http", "--port", "0", "--kb", "笔记",
         "--allow-add", str(inbox)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=environment(home, DSKIT_SERVE_TOKEN=TOKEN))
    banner: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            banner.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(banner)
        assert "bearer token: required" in text and "add_files" in text, text
        url = re.search(r"http://127\.0\.0\.1:\d+/mcp", text).group(0)  # type: ignore[union-attr]
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        assert httpx.post(url, json=ping, timeout=30).status_code == 401
        assert httpx.post(url, json=ping, timeout=30,
                          headers={"Authorization": "Bearer nope"}).status_code == 401

        bearer = {"Authorization": f"Bearer {TOKEN}"}

        async def run() -> tuple[list[str], Any, Any]:
            async with httpx2.AsyncClient(headers=bearer, timeout=LONG) as http, \
                    streamable_http_client(url, http_client=http) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                names = [t.name for t in (await session.list_tools()).tools]
                added = await session.call_tool("add_files", {"kb": "笔记", "paths": [
                    "会议纪要.md", "broken.pdf", str(tmp_path / "secret.txt"), "missing.md"]})
                found = await session.call_tool(
                    "search", {"kb": "笔记", "query": "新版本什么时候发布？", "top_k": 1})
                return names, added, found

        names, added, found = run_async(run)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert names == ["list_knowledge_bases", "search", "ask", "add_files"]
    rows = {r["path"]: r for r in added.structured_content["files"]}
    assert not added.is_error and rows["会议纪要.md"]["status"] == "added"
    assert rows["会议纪要.md"]["passages"] >= 1
    assert rows["broken.pdf"]["status"] == "failed" and rows["broken.pdf"]["reason"]
    assert rows[str(tmp_path / "secret.txt")]["reason"].startswith("outside the folders")
    assert rows["missing.md"] == {"path": "missing.md", "status": "failed", "passages": 0,
                                  "reason": "no such file"}
    assert found.structured_content["passages"][0]["file"] == "会议纪要.md"
    assert "dskit mcp: stopped" in out
    assert TOKEN not in "".join(banner) + out + err
    assert not (home / "笔记" / "kb.sqlite-wal").exists()  # closed on SIGTERM


@pytest.mark.subprocess
@pytest.mark.model
def test_ask_answers_with_numbered_sources(built: Path) -> None:
    """One answer from the embedded stand-in: its structure, not whether it is right."""
    question = "冲泡龙井茶的水温应该是多少度？"
    _, [answered] = over_stdio(built, ["--backend", "embedded", "--model", "smollm2:135m",
                                       "--max-tokens", "48"],
                               [("ask", {"kb": "笔记", "question": question})])
    assert not answered.is_error, answered.content[0].text
    data = answered.structured_content
    assert data["model"] == "smollm2:135m" and data["backend"] == "embedded"
    assert data["answer"].strip()
    sources = data["sources"]
    assert [s["n"] for s in sources] == list(range(1, len(sources) + 1))
    assert sources[0]["file"] == "docs/茶叶笔记.txt" and "八十度" in sources[0]["text"]
    assert {int(n) for n in CITATION.findall(data["answer"])} <= {s["n"] for s in sources}
    text = answered.content[0].text
    assert "Sources:\n[1] docs/茶叶笔记.txt (lines" in text
    assert "Answered by smollm2:135m (embedded) from knowledge base '笔记'." in text


# --- the command line in this process: what is refused before anything starts --------------
def test_refusals_exit_non_zero_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DSKIT_SERVE_TOKEN", raising=False)
    home = tmp_path / "home"
    cases = [
        (["--http", "--host", "0.0.0.0"], "refusing to listen on 0.0.0.0"),
        (["--http", "--host", "0.0.0.0", "--expose"], "without a token"),
        (["--port", "9000"], "--port: for --http only; add --http, or leave it out"),
        (["--kb", "新库"], "no knowledge base '新库'"),
        (["--kb", "../x"], "not a valid knowledge-base name"),
        (["--allow-add", str(tmp_path / "nowhere")], "not a folder"),
    ]
    for args, said in cases:
        assert main(["mcp", "--data-dir", str(home), *args]) == 2, args
        assert said in capsys.readouterr().err, args
    assert not home.exists()  # nothing refused left anything behind
    monkeypatch.setitem(sys.modules, "mcp", None)  # the mcp extra is not installed
    assert main(["mcp"]) == 2
    assert "pip install 'dskit[mcp]'" in capsys.readouterr().err


def test_help_documents_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["mcp", "--help"])
    shown = capsys.readouterr().out
    for words in ("--http", "--kb NAME", "--allow-add FOLDER", "--token", "--expose",
                  "DSKIT_SERVE_TOKEN", "Cherry Studio", "list_knowledge_bases"):
        assert words in shown, words
