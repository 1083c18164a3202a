"""`dskit kb …` as a real subprocess: add, search, ask, list, remove, refresh."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from tests import kbfiles


def test_kb_commands_end_to_end(dskit_cli, tmp_path: Path) -> None:
    docs = kbfiles.corpus(tmp_path / "docs")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    filler = "项目评审会改到周三上午十点，在三楼会议室，请各位准时参加并带上材料。" * 3
    kbfiles.write(docs / "通知.md", filler + "本周五晚上六点团队聚餐，地点在公司附近的湘菜馆。")
    env = {"DSKIT_KB_DIR": str(tmp_path / "home")}

    res = dskit_cli("kb", "add", "笔记", str(docs), env=env)
    assert res.returncode == 1, res.stderr  # one file failed: reported, the rest kept
    assert "broken.pdf" in res.stdout and "failed" in res.stdout
    assert "docs/notes.md" in res.stdout and "added" in res.stdout

    res = dskit_cli("kb", "list", env=env)
    assert res.returncode == 0 and "笔记" in res.stdout and "all-minilm" in res.stdout

    res = dskit_cli("kb", "search", "笔记", "长城西端在哪里", "-k", "2", env=env)
    assert res.returncode == 0, res.stderr
    first = res.stdout.splitlines()[1]
    assert "docs/notes.md" in first

    # The passage is shown around what matched, under its row: the answer is past its start.
    res = dskit_cli("kb", "search", "笔记", "团队聚餐是什么时候？", "-k", "1", env=env)
    assert res.returncode == 0, res.stderr
    row, passage = res.stdout.splitlines()[1:3]
    assert "docs/通知.md" in row and "本周五晚上六点团队聚餐" in passage, res.stdout

    res = dskit_cli("kb", "ask", "笔记", "长城西边到哪里？", "--backend", "embedded",
                "--max-tokens", "32", env=env)
    assert res.returncode == 0, res.stderr
    assert "[1] docs/notes.md" in res.stdout

    (docs / "fruit.txt").unlink()
    res = dskit_cli("kb", "refresh", "笔记", env=env)
    assert res.returncode == 0 and "docs/fruit.txt" in res.stdout and "removed" in res.stdout

    res = dskit_cli("kb", "remove", "笔记", str(docs / "memo.docx"), env=env)
    assert res.returncode == 0 and "removed" in res.stdout

    # A knowledge base embedded by an older dskit (sentence-transformers): a note with the fix.
    db = sqlite3.connect(tmp_path / "home" / "笔记" / "kb.sqlite")
    with db:
        db.execute("UPDATE meta SET value = 'all-minilm:l6-v2' WHERE key = 'embed_model'")
    db.close()
    res = dskit_cli("kb", "search", "笔记", "长城", env=env)
    assert res.returncode == 0 and "docs/notes.md" in res.stdout
    assert "note:" in res.stderr and "dskit kb rebuild 笔记" in res.stderr
    assert "Traceback" not in res.stderr and "warnings.warn" not in res.stderr
    res = dskit_cli("kb", "rebuild", "笔记", env=env)
    assert res.returncode == 0 and "re-embedded with llama.cpp:all-minilm:l6-v2" in res.stdout
    res = dskit_cli("kb", "search", "笔记", "长城", env=env)
    assert res.returncode == 0 and "note:" not in res.stderr

    res = dskit_cli("kb", "add", "../escape", str(docs), env=env)
    assert res.returncode == 2 and "not a valid knowledge-base name" in res.stderr


def test_read_only_commands_never_create_a_knowledge_base(dskit_cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"DSKIT_KB_DIR": str(home)}
    for args in (["search", "nosuchkb", "x"], ["ask", "nosuchkb", "x", "--backend", "embedded"],
                 ["files", "nosuchkb"], ["refresh", "nosuchkb"],
                 ["remove", "nosuchkb", str(tmp_path)]):
        res = dskit_cli("kb", *args, env=env)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "no knowledge base 'nosuchkb'" in res.stderr and "dskit kb add nosuchkb" in \
            res.stderr
    assert not (home / "nosuchkb").exists()
    res = dskit_cli("kb", "list", env=env)
    assert res.returncode == 0 and "no knowledge bases" in res.stdout


def test_a_knowledge_base_from_the_older_dskit_gets_its_rebuild_line(dskit_cli,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "home" / "旧库").mkdir(parents=True)
    shutil.copyfile(Path(__file__).parent / "data" / "legacy_minilm_kb.sqlite",
                    tmp_path / "home" / "旧库" / "kb.sqlite")  # scripts/make_legacy_kb.py
    env = {"DSKIT_KB_DIR": str(tmp_path / "home")}
    res = dskit_cli("kb", "list", env=env)
    assert res.returncode == 0 and "旧库" in res.stdout
    assert "note: knowledge base '旧库' was embedded by sentence-transformers" in res.stderr
    assert "`dskit kb rebuild 旧库`" in res.stderr
    res = dskit_cli("kb", "search", "旧库", "长城西端", "-k", "1", env=env)
    assert res.returncode == 0 and "wall.txt" in res.stdout
    assert res.stderr.count("note:") == 1 and "`dskit kb rebuild 旧库`" in res.stderr
    res = dskit_cli("kb", "rebuild", "旧库", env=env)
    assert res.returncode == 0 and "5 documents re-embedded with llama.cpp:all-minilm" in res.stdout
    res = dskit_cli("kb", "list", env=env)
    assert "llama.cpp:all-minilm:l6-v2" in res.stdout and "note:" not in res.stderr
