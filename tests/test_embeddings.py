"""Embedding models: the local MiniLM on llama.cpp for real, checked against sentence-transformers'
vectors (tests/data, made by scripts/make_minilm_reference.py); Ollama's shapes replayed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from importlib.resources import files
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pytest
from pytest_httpserver import HTTPServer

from dskit import embeddings
from dskit.backends.ollama import OllamaBackend
from dskit.embeddings import (
    LOCAL_NAME,
    EmbeddingError,
    HFEmbedder,
    LocalEmbedder,
    OllamaEmbedder,
    get_embedder,
)
from dskit.errors import BackendUnavailable, ConfigurationError, ModelNotFound

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json")
                       .read_text(encoding="utf-8"))
HAVE_ST = importlib.util.find_spec("sentence_transformers") is not None
NO_HF = "the optional hf extra (sentence-transformers, torch) is not installed"


@pytest.mark.model
def test_local_minilm_gives_unit_vectors() -> None:
    emb = get_embedder("all-minilm")
    assert isinstance(emb, LocalEmbedder) and emb.name == LOCAL_NAME and emb.dim == 384
    vecs = emb.embed(["The cat sat on the mat.", "A cat is sitting on a rug.",
                      "Stock markets fell sharply today."])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # paraphrases are closer than unrelated text
    assert emb.embed([]).shape == (0, 384)
    assert get_embedder(None).name == LOCAL_NAME
    assert get_embedder(LOCAL_NAME).name == LOCAL_NAME  # a stored name opens the same engine


@pytest.mark.model
def test_vectors_match_sentence_transformers() -> None:
    """Each reference sentence: cosine >= 0.99 with sentence-transformers' vector."""
    texts = [s["text"] for s in REFERENCE["sentences"]]
    assert len(texts) >= 20 and sum(s["pieces"] > 256 for s in REFERENCE["sentences"]) >= 3
    ref = np.array([s["vector"] for s in REFERENCE["sentences"]], dtype=np.float32)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    ours = LocalEmbedder().embed(texts)
    cosines = (ours * ref).sum(axis=1)
    low = {t[:40]: round(float(c), 4) for t, c in zip(texts, cosines, strict=True) if c < 0.99}
    assert low == {}
    # One at a time gives the same vectors as in batches: packing sequences into one llama.cpp
    # batch changes only the order of float sums (flash attention accumulates in F16).
    single = np.concatenate([LocalEmbedder().embed([t]) for t in texts[:6] + texts[-3:]])
    packed = np.concatenate([ours[:6], ours[-3:]])
    assert (single * packed).sum(axis=1).min() > 0.9999


@pytest.mark.model
def test_word_pieces_match_hugging_face() -> None:
    """llama.cpp's WordPiece ids equal HF's: every CJK character apart, truncation at 256."""
    from dskit.embeddings import _local_encoder

    enc = _local_encoder()
    for s in REFERENCE["sentences"]:
        assert enc.ids(s["text"]) == s["ids"], s["text"][:40]
    zh = next(s for s in REFERENCE["sentences"] if s["text"] == "冲泡龙井用多少度的水？")
    assert len(zh["ids"]) == len("冲泡龙井用多少度的水？") + 2  # [CLS] + one per character + [SEP]
    long = [s for s in REFERENCE["sentences"] if s["pieces"] > 256]
    assert all(len(enc.ids(s["text"])) == 256 and enc.ids(s["text"])[-1] == enc.sep for s in long)
    counts = LocalEmbedder().count_tokens([s["text"] for s in long])
    assert counts == [s["pieces"] for s in long]  # counted before truncation


@pytest.mark.model
def test_local_embedder_is_thread_safe() -> None:
    texts = [s["text"] for s in REFERENCE["sentences"]][:8]
    expected = LocalEmbedder().embed(texts)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(LocalEmbedder().embed(texts))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 4
    assert all(np.allclose(r, expected, atol=1e-5) for r in results)


#: Chunk-sized texts (~150-250 word pieces each), Chinese and English, for the spread tests.
CHUNKS = [("龙井是绿茶，产自杭州西湖一带，冲泡水温以八十度左右为宜。" * 6)[: 120 + 9 * i]
          if i % 2 else " ".join(["Tomatoes need at least six hours of direct sun a day."] * 14)
          + f" ({i})" for i in range(10)]


class _Recorded(embeddings._Context):
    """A real llama.cpp context that records its life, to see how a call used contexts."""

    made: ClassVar[list[_Recorded]] = []
    pieces: ClassVar[list[int]] = []  # word pieces of each decode, in the order they started

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.closed = False
        self.decodes = 0
        _Recorded.made.append(self)

    def run(self, seqs: list[list[int]], *args: object) -> None:
        self.decodes += 1
        _Recorded.pieces.append(sum(map(len, seqs)))
        super().run(seqs, *args)

    def close(self) -> None:
        self.closed = True
        super().close()


def _encoder(workers: int) -> embeddings._Encoder:
    return embeddings._Encoder(embeddings._made_file(None), 256, workers=workers)


def test_batches_spread_over_contexts_give_the_same_vectors(monkeypatch) -> None:
    """Two contexts side by side, one thread each, embed what one context does; the contexts
    made for the call are freed after it, and a short query uses the kept one."""
    one = _encoder(1)
    expected = one.embed(CHUNKS)
    monkeypatch.setattr(embeddings, "_Context", _Recorded)
    _Recorded.made = []
    two = _encoder(2)
    kept = _Recorded.made[0]
    got = two.embed(CHUNKS)
    assert np.allclose(got, expected, atol=1e-5)
    for_call = _Recorded.made[1:]
    assert len(for_call) == 2 and all(c.closed and c.decodes > 0 for c in for_call)
    assert sum(c.decodes for c in for_call) == len(CHUNKS)  # one chunk per 256-piece decode
    assert kept.decodes == 0 and not kept.closed
    # Longest decodes first, whatever the texts' order: the call ends on short ones, so one
    # context does not finish a long decode alone while the other waits.
    _Recorded.pieces = []
    texts = sorted(CHUNKS, key=lambda t: len(one.ids(t)))  # shortest first
    assert np.allclose(two.embed(texts), expected[[CHUNKS.index(t) for t in texts]], atol=1e-5)
    sizes = sorted((len(two.ids(t)) for t in texts), reverse=True)
    assert sorted(_Recorded.pieces[:2], reverse=True) == sizes[:2]
    assert sorted(_Recorded.pieces[-2:]) == sorted(sizes[-2:])
    query = two.embed(["冲泡龙井用多少度的水？"])
    assert kept.decodes == 1 and len(_Recorded.made) == 5  # no context made for a query
    assert np.allclose(query, one.embed(["冲泡龙井用多少度的水？"]), atol=1e-5)
    # Many short texts: at most SEQS_PER_DECODE sequences per decode, same vectors one by one.
    short = [f"第{i}号问题：熊猫吃什么？ question {i}" for i in range(40)]
    packed = two.embed(short)
    alone = np.concatenate([one.embed([t]) for t in short])
    assert (packed * alone).sum(axis=1).min() > 0.9999
    one.close()
    two.close()
    with pytest.raises(EmbeddingError, match="closed"):
        two.embed(["again"])


def test_a_failed_decode_stops_the_call_and_the_encoder_goes_on(monkeypatch) -> None:
    """A batch llama.cpp refuses (here: a word-piece id outside the vocabulary, which no text
    produces) fails the whole call with a typed error; the other context stops, the contexts
    made for the call are freed, and the next call works."""
    enc = _encoder(2)
    expected = enc.embed(CHUNKS[:3])
    real_ids = enc._ids

    def poisoned(text: str, truncate: bool = True) -> list[int]:
        ids = real_ids(text, truncate)
        return [ids[0], 10**6, *ids[2:]] if text == CHUNKS[5] else ids

    monkeypatch.setattr(embeddings, "_Context", _Recorded)
    _Recorded.made = []
    monkeypatch.setattr(enc, "_ids", poisoned)
    with pytest.raises(EmbeddingError, match="llama_decode returned"):
        enc.embed(CHUNKS)
    assert _Recorded.made and all(c.closed for c in _Recorded.made)
    assert sum(c.decodes for c in _Recorded.made) < len(CHUNKS)  # stopped early
    monkeypatch.setattr(enc, "_ids", real_ids)
    assert np.allclose(enc.embed(CHUNKS[:3]), expected, atol=1e-5)
    enc.close()


@pytest.mark.skipif(not HAVE_ST, reason=NO_HF)
def test_hf_extra_runs_sentence_transformers() -> None:
    emb = get_embedder("hf:all-minilm")
    assert isinstance(emb, HFEmbedder) and emb.name == "hf:all-minilm" and emb.dim == 384
    texts = [s["text"] for s in REFERENCE["sentences"]][:5]
    ref = np.array([s["vector"] for s in REFERENCE["sentences"]][:5])
    assert np.allclose(emb.embed(texts), ref, atol=1e-3)
    with pytest.raises(ModelNotFound, match="never downloads"):
        get_embedder("hf:/no/such/model").embed(["x"])


@pytest.mark.skipif(HAVE_ST, reason="sentence-transformers is installed: no error to check")
def test_hf_without_the_extra_says_how_to_install() -> None:
    with pytest.raises(BackendUnavailable, match=r"dskit\[hf\]"):
        get_embedder("hf:all-minilm").embed(["x"])


def ollama(httpserver: HTTPServer, show: dict) -> OllamaBackend:
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.12.3"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(show)
    httpserver.expect_request("/api/tags").respond_with_json({"models": []})
    return OllamaBackend(host=httpserver.url_for(""))


R1_SHOW = {"details": {"family": "qwen2", "parameter_size": "7.6B"},
           "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 131072},
           "capabilities": ["completion", "thinking"]}
BGE_SHOW = {"details": {"family": "bert", "parameter_size": "566.70M"},
            "model_info": {"general.architecture": "bert", "bert.pooling_type": 2},
            "capabilities": ["embedding"]}


def test_chat_model_is_refused_as_embedder(httpserver: HTTPServer) -> None:
    backend = ollama(httpserver, R1_SHOW)
    with pytest.raises(EmbeddingError) as info:
        get_embedder("deepseek-r1:7b", backend=backend)
    message = str(info.value)
    assert "chat model" in message and "failed to get embedding dimensions" in message
    assert "ollama pull bge-m3" in message


def test_chat_model_is_refused_on_older_servers_too(httpserver: HTTPServer) -> None:
    show = {k: v for k, v in R1_SHOW.items() if k != "capabilities"}
    with pytest.raises(EmbeddingError):
        get_embedder("ollama:deepseek-r1:7b", backend=ollama(httpserver, show))


def test_embedding_model_dimension_is_probed(httpserver: HTTPServer) -> None:
    backend = ollama(httpserver, BGE_SHOW)
    httpserver.expect_request("/api/embed", method="POST").respond_with_json(
        {"model": "bge-m3", "embeddings": [[3.0, 4.0] + [0.0] * 1022]})
    emb = get_embedder("bge-m3", backend=backend)
    assert isinstance(emb, OllamaEmbedder) and emb.name == "ollama:bge-m3"
    assert emb.dim == 1024
    vec = emb.embed(["长城有多长？"])
    assert vec.shape == (1, 1024) and abs(float(vec[0, 0]) - 0.6) < 1e-6


def test_missing_embedding_model_says_pull(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.12.3"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(
        {"error": "model 'bge-m3' not found"}, status=404)
    httpserver.expect_request("/api/tags").respond_with_json({"models": []})
    with pytest.raises(ModelNotFound, match="ollama pull bge-m3"):
        get_embedder("bge-m3", backend=OllamaBackend(host=httpserver.url_for("")))


def test_empty_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        get_embedder("  ")
    with pytest.raises(ConfigurationError, match="hf:"):
        get_embedder("hf:")


@pytest.fixture(scope="module")
def served():
    """A real `dskit serve` (Ollama's API over the embedded models) on a free port."""
    from dskit import serve

    server = serve.start(port=0)
    yield server
    server.stop()


@pytest.mark.model
def test_real_ollama_api_embedder_and_refusal(served, tmp_path) -> None:
    from dskit.kb import KnowledgeBase

    backend = OllamaBackend(host=served.url)
    with pytest.raises(EmbeddingError, match="chat model"):
        get_embedder("qwen2.5-coder:0.5b", backend=backend)
    emb = get_embedder("ollama:all-minilm:l6-v2", backend=backend)
    assert emb.dim == 384
    kb = KnowledgeBase("via-ollama", data_dir=tmp_path, embed_model=emb)
    kb.add(text="长城东起山海关，西至嘉峪关。", name="wall", progress=False)
    kb.add(text="Sourdough starter needs flour and water.", name="bread", progress=False)
    assert kb.embed_model == "ollama:all-minilm:l6-v2"
    assert kb.search("长城西边到哪里", k=1).iloc[0].source == "wall"


# Makes `import torch` (and the two libraries built on it) fail in a subprocess, as it fails in
# an environment made by `make demo`, whatever this test environment has installed.
NO_TORCH = '''
import importlib.abc
import sys

BLOCKED = {"torch", "transformers", "sentence_transformers"}


class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
'''


def test_knowledge_bases_and_serve_work_where_torch_cannot_be_imported(
        dskit_cli, tmp_path: Path, unused_port: int) -> None:
    """The default install has no torch: `dskit kb` and `dskit serve`'s embeddings still work."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_TORCH, encoding="utf-8")
    env = {"PYTHONPATH": str(site), "DSKIT_KB_DIR": str(tmp_path / "kbs")}
    full_env = {**os.environ, **env}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=full_env,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr

    sample = str(files("dskit") / "data" / "sample_kb")
    res = dskit_cli("kb", "add", "notes", sample, env=env)
    assert res.returncode == 0, res.stderr
    res = dskit_cli("kb", "search", "notes", "冲泡龙井用多少度的水？", "-k", "1", env=env)
    assert res.returncode == 0, res.stderr
    assert "茶叶笔记.txt" in res.stdout.splitlines()[1]
    res = dskit_cli("kb", "list", env=env)
    assert res.returncode == 0 and "llama.cpp:all-minilm:l6-v2" in res.stdout
    # Another Hugging Face model needs the hf extra: said with the command that installs it.
    res = dskit_cli("kb", "add", "hf", sample, "--embed-model", "hf:all-minilm", env=env)
    assert res.returncode != 0 and "dskit[hf]" in res.stderr and "Traceback" not in res.stderr
    assert "hf:all-minilm" not in dskit_cli("kb", "list", env=env).stdout  # refused before made

    server = subprocess.Popen(
        [sys.executable, "-m", "dskit", "serve", "--port", str(unused_port)], env=full_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{unused_port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                httpx.get(f"{url}/api/version", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "dskit serve did not start"
                time.sleep(0.5)
        texts = ["The cat sat on the mat.", "A cat is sitting on a rug.", "股市今天大跌。"]
        got = httpx.post(f"{url}/api/embed", json={"model": "all-minilm", "input": texts},
                         timeout=300)
        assert got.status_code == 200, got.text
        vecs = np.array(got.json()["embeddings"])
        assert vecs.shape == (3, 384) and vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
        ours = LocalEmbedder().embed(texts)  # the same GGUF in this process
        assert (vecs * ours).sum(axis=1).min() > 0.9999
        oa = httpx.post(f"{url}/v1/embeddings", json={"model": "all-minilm:l6-v2",
                                                       "input": texts[0]}, timeout=300)
        assert oa.status_code == 200 and len(oa.json()["data"][0]["embedding"]) == 384
    finally:
        server.terminate()
        server.wait(60)
