"""The knowledge-base tools `dskit mcp` serves, without the SDK: their schemas, their checks
(names, arguments, the paths add_files may take) and what a read-only server leaves on disk."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from dskit.errors import ConfigurationError, KnowledgeBaseError
from dskit.kb import KnowledgeBase
from dskit.serve.kb_tools import ADD_TOOL, KbTools, answer_reply
from tests import kbfiles
from tests.test_kb import HashEmbedder


def listing(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under `root`: size and SHA-256 (what "creates nothing" compares)."""
    return {str(p.relative_to(root)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data directory with one knowledge base, 笔记, embedded without a model."""
    kb = KnowledgeBase("笔记", data_dir=tmp_path / "home", embed_model=HashEmbedder())
    kb.add(text="本周五晚上六点团队聚餐，地点在公司附近的湘菜馆。", name="通知.md", progress=False)
    kb.close()
    return tmp_path / "home"


def test_the_schemas_are_valid_and_add_files_is_offered_only_when_allowed(tmp_path: Path) -> None:
    read_only = KbTools(tmp_path / "home")
    assert [s.name for s in read_only.specs()] == ["list_knowledge_bases", "search", "ask"]
    assert all(s.read_only for s in read_only.specs())
    writer = KbTools(tmp_path / "home", add_from=[tmp_path])
    assert [s.name for s in writer.specs()][-1] == "add_files" and not ADD_TOOL.read_only
    for spec in writer.specs():
        Draft202012Validator.check_schema(spec.input_schema)
        Draft202012Validator.check_schema(spec.output_schema)
        assert spec.input_schema["additionalProperties"] is False
        assert "知识库" in spec.title + spec.description  # a Chinese user's model finds them
    with pytest.raises(ConfigurationError, match="read-only: start it with --allow-add"):
        read_only.add_files("笔记", ["x.md"])
    with pytest.raises(ConfigurationError, match="no tool 'add_files' here"):
        read_only.call("add_files", {"kb": "笔记", "paths": ["x.md"]})


def test_bad_arguments_are_errors_that_say_the_fix(home: Path) -> None:
    tools = KbTools(home)
    with pytest.raises(ConfigurationError, match="query is empty: give what to look for"):
        tools.call("search", {"kb": "笔记", "query": "  "})
    with pytest.raises(ConfigurationError, match="top_k=0: give a whole number from 1 to 20"):
        tools.call("search", {"kb": "笔记", "query": "聚餐", "top_k": 0})
    with pytest.raises(ConfigurationError, match="top_k=True"):
        tools.call("search", {"kb": "笔记", "query": "聚餐", "top_k": True})
    with pytest.raises(ConfigurationError, match="search takes kb, query, top_k, not k"):
        tools.call("search", {"kb": "笔记", "query": "聚餐", "k": 3})
    with pytest.raises(ConfigurationError, match="question is empty"):
        tools.call("ask", {"kb": "笔记", "question": ""})
    with pytest.raises(ConfigurationError, match=r"kb is missing: .*list_knowledge_bases"):
        tools.call("search", {"query": "聚餐"})
    with pytest.raises(KnowledgeBaseError, match=r"no knowledge base '旧笔记' \(known: '笔记'\): "
                       r"call list_knowledge_bases .*`dskit kb add 旧笔记 FOLDER`"):
        tools.call("search", {"kb": "旧笔记", "query": "聚餐"})
    with pytest.raises(ConfigurationError, match="not a valid knowledge-base name"):
        tools.call("search", {"kb": "../笔记", "query": "聚餐"})
    only = KbTools(home, names=["笔记"])
    with pytest.raises(KnowledgeBaseError, match="'其他' is not served here: this server serves "
                       "'笔记'"):
        only.call("ask", {"kb": "其他", "question": "聚餐在哪里？"})


def test_list_gives_files_passages_model_and_last_change(home: Path) -> None:
    result = KbTools(home).call("list_knowledge_bases", {})
    [row] = result.data["knowledge_bases"]
    assert row["name"] == "笔记" and row["files"] == 1 and row["passages"] == 1
    assert row["embedding_model"] == "hash-64" and row["updated"].startswith("20")
    assert result.data["can_add_files"] is False
    assert "笔记: 1 files, 1 passages, embedded with hash-64" in result.text


def test_a_read_only_server_creates_nothing(tmp_path: Path, home: Path) -> None:
    before = listing(tmp_path)
    tools = KbTools(home)
    for name, args in [("list_knowledge_bases", {}), ("search", {"kb": "新库", "query": "x"}),
                       ("ask", {"kb": "新库", "question": "x"})]:
        with contextlib.suppress(KnowledgeBaseError):
            tools.call(name, args)
    tools.close()
    with pytest.raises(KnowledgeBaseError, match=r"no knowledge base '新库' .*--allow-add FOLDER"):
        KbTools(home, names=["新库"])  # read-only: a name that is not there is refused at start
    empty = KbTools(tmp_path / "nowhere").call("list_knowledge_bases", {})
    assert empty.data["knowledge_bases"] == [] and "dskit kb add NAME FOLDER" in empty.text
    assert listing(tmp_path) == before
    assert not (tmp_path / "nowhere").exists() and not (home / "新库").exists()


def test_add_files_takes_only_regular_files_inside_the_allowed_folders(tmp_path: Path,
                                                                      home: Path) -> None:
    inbox = tmp_path / "inbox"
    kbfiles.write(inbox / "会议纪要.md", "会议决定：下周三发布新版本，负责人张伟。")
    kbfiles.write(inbox / "sub" / "龙井.md", "冲泡龙井的水温以八十度左右为宜。")
    kbfiles.write(inbox / ".env", "TOKEN=secret")
    kbfiles.write(inbox / ".ssh" / "id_rsa", "key")
    kbfiles.write(tmp_path / "outside.md", "外面的文件")
    (inbox / "escape.md").symlink_to(tmp_path / "outside.md")
    (inbox / "inside.md").symlink_to(inbox / "会议纪要.md")
    os.mkfifo(inbox / "pipe")
    tools = KbTools(home, add_from=[inbox])
    assert tools.allowed("会议纪要.md") == (inbox / "会议纪要.md").resolve()  # relative: inbox's
    assert tools.allowed(str(inbox / "sub" / "龙井.md")) == (inbox / "sub" / "龙井.md").resolve()
    assert tools.allowed("inside.md") == (inbox / "会议纪要.md").resolve()
    refused = {p: tools.allowed(p) for p in
               ["missing.md", str(tmp_path / "outside.md"), "escape.md", ".env", ".ssh/id_rsa",
                "sub", "pipe", "", "a\0b"]}
    assert refused == {
        "missing.md": "no such file",
        str(tmp_path / "outside.md"): f"outside the folders this server may add from "
                                       f"({inbox.resolve()})",
        "escape.md": f"outside the folders this server may add from ({inbox.resolve()})",
        ".env": "a hidden file or folder (such as .env or .ssh): never added",
        ".ssh/id_rsa": "a hidden file or folder (such as .env or .ssh): never added",
        "sub": "a folder: give the files in it",
        "pipe": "not a regular file (a device, pipe or socket)",
        "": "not a file path", "a\0b": "not a file path"}
    with pytest.raises(ConfigurationError, match=r"--allow-add .*: not a folder"):
        KbTools(home, add_from=[inbox / "会议纪要.md"])
    with pytest.raises(ConfigurationError, match="paths must be a list of 1 to 100"):
        tools.add_files("笔记", [])


def test_an_answers_data_becomes_a_reply_to_grade() -> None:
    data = {"answer": "冲泡龙井的水温以八十度左右为宜 [1]。", "model": "smollm2:135m",
            "backend": "embedded", "notes": [], "done_reason": "stop",
            "sources": [{"n": 1, "file": "docs/茶叶笔记.txt", "location": "lines 1–2",
                         "score": 0.46, "text": "冲泡龙井的水温以八十度左右为宜"}]}
    reply = answer_reply(data).grade(80)
    assert reply.citations == [1] and reply.sources[0].label().startswith("[1] docs/茶叶笔记.txt")
    assert reply.verdict is not None and reply.verdict.correct  # [1] is a citation, not "1"
    with pytest.raises(ConfigurationError, match="pass the call's structured_content"):
        answer_reply({"passages": []})
