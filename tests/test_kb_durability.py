"""Crash safety and concurrent writers, with real processes killed at random moments."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dskit.kb import KnowledgeBase
from tests import kbfiles

WRITER = textwrap.dedent("""
    import sys
    from dskit.kb import KnowledgeBase
    from dskit.embeddings import get_embedder
    get_embedder().embed(["warm up"])          # load the model before the clock starts
    kb = KnowledgeBase(sys.argv[1], data_dir=sys.argv[2])
    print("START", flush=True)
    for path in sys.argv[3:]:
        kb.add(path, progress=False)
        kb.refresh(progress=False)
    kb.rebuild(chunk_size=96)
    print("DONE", flush=True)
""")


def make_corpus(root: Path, n: int, tag: str) -> Path:
    for i in range(n):
        kbfiles.write(root / f"{tag}{i:03d}.md", "\n".join(
            f"{tag} document {i}, paragraph {j}: 第{j}段，关于主题{i}的说明。" * 3
            for j in range(8)))
    return root


def start_writer(name: str, home: Path, *paths: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", WRITER, name, str(home), *map(str, paths)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for(proc: subprocess.Popen[str], word: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == word:
            return
    raise AssertionError(f"writer ended before {word}: {proc.stderr.read() if proc.stderr else ''}")


@pytest.mark.subprocess
def test_killed_writer_leaves_a_loadable_knowledge_base(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = make_corpus(tmp_path / "a", 20, "alpha")
    second = make_corpus(tmp_path / "b", 20, "beta")
    rng = random.Random(20261128)
    killed = 0
    for _attempt in range(5):
        proc = start_writer("crash", home, first, second)
        wait_for(proc, "START")
        # kill somewhere in add / refresh / rebuild; a later attempt may finish first
        try:
            proc.wait(timeout=rng.uniform(0.05, 3.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed += 1
        kbfiles.assert_consistent(home / "crash" / "kb.sqlite")
        kb = KnowledgeBase("crash", data_dir=home)
        hits = kb.search("alpha document 3", k=3) if len(kb) else None
        assert hits is None or len(hits) > 0
        kb.close()
    assert killed >= 3  # the kills really happened mid-write
    # after all the kills, a clean run completes and everything is there
    proc = start_writer("crash", home, first, second)
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    kb = KnowledgeBase("crash", data_dir=home)
    assert len(kb.files()) == 40
    kbfiles.assert_consistent(home / "crash" / "kb.sqlite")


@pytest.mark.subprocess
def test_two_writers_are_serialised(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a = make_corpus(tmp_path / "a", 8, "alpha")
    b = make_corpus(tmp_path / "b", 8, "beta")
    KnowledgeBase("shared", data_dir=home).close()  # same settings for both writers
    procs = [start_writer("shared", home, a), start_writer("shared", home, b)]
    for p in procs:
        _out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    kb = KnowledgeBase("shared", data_dir=home)
    sources = set(kb.files().source)
    assert len(sources) == 16
    assert any(s.startswith("a/") for s in sources) and any(s.startswith("b/") for s in sources)
    kbfiles.assert_consistent(home / "shared" / "kb.sqlite")


@pytest.mark.model
def test_lock_timeout_is_a_clear_error(tmp_path: Path) -> None:
    from filelock import FileLock

    from dskit.kb import KnowledgeBaseBusy

    kb = KnowledgeBase("busy", data_dir=tmp_path, lock_timeout=0.2)
    with FileLock(str(tmp_path / "busy" / "write.lock")), \
            pytest.raises(KnowledgeBaseBusy, match="another process"):
        kb.add(text="hello there friend", name="t")
