"""The chat layer on a scripted backend: splitting, the reasoning plan, stop, breaks, history.

Fast and deterministic; the same paths run on the real models in test_embedded.py and against
Ollama's and OpenAI's shapes in test_ollama.py / test_openai.py.
"""

from __future__ import annotations

import threading

import pytest

from dskit.backends.base import Delta, Done
from dskit.conversation.session import Conversation
from dskit.conversation.stream import ChatStream, build_request
from dskit.errors import StreamInterrupted
from dskit.reasoning.plan import THINK_PREFIX, ReasoningSupport
from dskit.recommendations import FOLD_NOTE
from dskit.reply import Stats
from tests.fakes import interrupted

R1 = "deepseek-r1:7b"
EMBEDDED_LIKE = ReasoningSupport(force_prefix=True, two_phase=True)


def test_inline_tags_are_split(scripted):
    client = scripted(["<th", "ink>Two plus", " two.</thi", "nk>\n\nIt is ", "4."],
                      models=["plain:1b"])
    reply = client.chat("What is 2+2?")
    assert (reply.thinking, reply.answer) == ("Two plus two.", "It is 4.")
    assert reply.reasoned and reply.status == "ok" and reply.done_reason == "stop"
    assert reply.backend == "fake" and reply.model == "plain:1b"


def test_stray_think_tags_never_reach_the_reasoning(scripted):
    # The 0.5B stand-in, asked to reason, wrote <think> between its steps and at the end;
    # backends give such reasoning apart (the embedded one's phases) or inline.
    apart = [Delta("thinking", "小明有 5 个。\n<th"),
             Delta("thinking", "ink>\n还剩 3 个。\n<think>"), Delta("answer", "3")]
    inline = ["小明有 5 个。\n<think>\n还剩 3 个。\n<thi", "nk></think>", "3"]
    for script in (apart, inline):
        reply = scripted(script, models=[R1], support=EMBEDDED_LIKE).chat("他还有几个？")
        assert (reply.thinking, reply.answer) == ("小明有 5 个。\n\n还剩 3 个。", "3")


def test_r1_reply_is_read_as_starting_inside_its_reasoning(scripted):
    # The template (or the forced prefix) opened <think>: the output only closes it.
    client = scripted(["Let me add.", "</think>", "4"], models=[R1], support=EMBEDDED_LIKE)
    reply = client.chat("2+2?")
    assert (reply.thinking, reply.answer) == ("Let me add.", "4")
    request = client.backend.requests[0]
    assert request.plan.prefix == THINK_PREFIX and request.plan.starts_inside
    assert request.options.temperature == 0.6 and request.options.top_p == 0.95


def test_plan_reaches_the_backend(scripted):
    client = scripted(["Answer."], models=["plain:1b"], support=EMBEDDED_LIKE)
    client.chat("hi", think=True)
    client.chat("hi")
    asked, default = (r.plan for r in client.backend.requests)
    assert asked.two_phase and asked.think is True
    assert not default.two_phase and default.think is None


def test_think_true_without_support_says_so(scripted):
    client = scripted(["Plain answer."], models=["plain:1b"], support=ReasoningSupport())
    reply = client.chat("hi", think=True)
    assert reply.answer == "Plain answer."
    assert any("had no effect" in n for n in reply.notes)


def test_system_prompt_is_folded_for_r1_with_a_note(scripted):
    client = scripted(["ok</think>Fine."], models=[R1])
    reply = client.chat("Hi", system="Answer in Chinese.")
    assert FOLD_NOTE in reply.notes
    sent = client.backend.requests[0].messages
    assert sent == [{"role": "user", "content": "Answer in Chinese.\n\nHi"}]


def test_stream_tags_chunks_and_keeps_the_reply(scripted):
    client = scripted([Delta("thinking", "Hmm. "), Delta("thinking", "Yes."),
                       Delta("answer", "Done."),
                       Done(Stats(eval_tokens=3, eval_time=0.5), "stop")])
    stream = client.chat("q", stream=True)
    assert isinstance(stream, ChatStream)
    kinds = [(c.kind, c.text) for c in stream]
    assert kinds == [("thinking", "Hmm. "), ("thinking", "Yes."), ("answer", "Done.")]
    assert stream.finished and stream.reply.answer == "Done."
    assert stream.reply.stats.tokens_per_s == 6.0 and stream.reply.stats.ttft is not None


def test_stop_keeps_the_partial_reply_and_closes_the_backend_stream(scripted):
    gate = threading.Event()
    gate.set()
    client = scripted(["<think>Step one.", " Step two.", "</think>Never shown."], gate=gate)
    stream = client.chat("q", stream=True)
    chunks = iter(stream)
    assert next(chunks).text == "Step one."
    stream.stop()
    rest = list(chunks)
    assert rest == [] and stream.stopped
    reply = stream.reply
    assert reply.thinking == "Step one." and reply.answer == ""
    assert reply.done_reason == "stopped"
    assert client.backend.closed == [True]


def test_leaving_the_loop_early_counts_as_stop(scripted):
    client = scripted(["Hello", " world", " and more"])
    stream = client.chat("q", stream=True)
    for chunk in stream:
        assert chunk.text == "Hello"
        break
    stream_iter = stream  # the for loop closed the generator
    assert stream_iter.reply.answer == "Hello" and stream_iter.reply.done_reason == "stopped"


def test_a_broken_stream_keeps_its_partial_text(scripted):
    client = scripted(["<think>Adding.</think>", "The answer", interrupted("reset by peer")])
    with pytest.raises(StreamInterrupted, match="reset by peer") as info:
        client.chat("2+2?")
    partial = info.value.partial
    assert partial is not None
    assert (partial.thinking, partial.answer) == ("Adding.", "The answer")


def test_reply_ending_inside_reasoning_has_no_answer(scripted):
    client = scripted(["<think>Still thinking", Done(Stats(), "length")])
    reply = client.chat("q")
    assert reply.no_answer and reply.unfinished_reasoning
    assert reply.status == "no answer: stopped while still reasoning"
    assert any("max_tokens" in n for n in reply.notes)


def test_r1_that_skips_its_reasoning_is_an_answer(scripted):
    # Assumed to start inside <think>, but it stopped by itself without any tag: an answer.
    client = scripted(["Paris is the capital.", Done(Stats(), "stop")], models=[R1])
    reply = client.chat("Capital of France?")
    assert reply.answer == "Paris is the capital." and reply.thinking == ""
    assert "The model answered without reasoning." in reply.notes


def test_conversation_keeps_answers_only_and_skips_broken_turns(scripted):
    client = scripted(["<think>secret</think>Hi Ming."],
                      ["<think>hmm</think>Your", interrupted()],
                      ["<think>again</think>Ming."], models=[R1])
    conv = Conversation(client=client)
    conv.send("我叫小明。")
    assert conv.history == [{"role": "user", "content": "我叫小明。"},
                            {"role": "assistant", "content": "Hi Ming."}]
    with pytest.raises(StreamInterrupted):
        conv.send("我叫什么？")
    assert len(conv.history) == 2 and len(conv.replies) == 1
    conv.send("我叫什么？")
    sent = client.backend.requests[-1].messages
    assert "secret" not in str(sent) and len(conv.history) == 4


def test_stopped_turn_is_not_added_to_history(scripted):
    client = scripted(["One", " two", " three"])
    conv = Conversation(client=client)
    stream = conv.send("count", stream=True)
    for _ in stream:
        stream.stop()
    assert stream.reply.done_reason == "stopped" and conv.history == []


def test_a_stream_is_iterated_once(scripted):
    stream = scripted(["x"]).chat("q", stream=True)
    list(stream)
    with pytest.raises(RuntimeError, match="only once"):
        list(stream)


def test_print_live_shows_the_reasoning_as_it_comes_then_the_answer(scripted):
    client = scripted([], models=["plain:1b"])
    question = [{"role": "user", "content": "一支笔 3 元，14 支笔多少钱？"}]
    request, notes = build_request(client, question, None)
    sent: list[str] = []

    def events():
        for ev in (Delta("thinking", "一支笔 3 元，"), Delta("thinking", "14 支是 42 元。"),
                   Delta("answer", "42 元。"), Done(Stats(eval_tokens=3, eval_time=0.1))):
            sent.append(getattr(ev, "text", "done"))
            yield ev

    printed: list[tuple[str, int]] = []

    class Out:
        def write(self, text: str) -> None:
            printed.append((text, len(sent)))  # what the backend had sent by then

        def flush(self) -> None:
            pass

    stream = ChatStream(client, request, notes, events=events())
    reply = stream.print_live(Out())  # type: ignore[arg-type]
    assert "".join(t for t, _ in printed) == \
        "[reasoning]\n一支笔 3 元，14 支是 42 元。\n\n[answer]\n42 元。\n"
    # each piece is printed as it arrives, before the next one is even sent
    assert ("一支笔 3 元，", 1) in printed and ("42 元。", 3) in printed
    assert reply is stream.reply and reply.answer == "42 元。"


def test_print_live_says_how_a_reply_without_an_answer_ended(scripted):
    import io

    client = scripted(["<think>Thinking about the sea"], models=["plain:1b"])
    out = io.StringIO()
    reply = client.chat("Tell me about the sea.", stream=True, max_tokens=8).print_live(out)
    assert reply.no_answer
    assert out.getvalue().startswith("[reasoning]\nThinking about the sea\n[no answer")
