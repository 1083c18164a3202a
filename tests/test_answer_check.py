"""What counts as no real answer (`dskit.reasoning.answer_check`), and how a reply says so: the
chat widget's free prompts got "84" (the previous answer), "0" or nothing after reasoning."""

from __future__ import annotations

import pytest

from dskit.conversation.session import Conversation
from dskit.reasoning.answer_check import degenerate_answer
from dskit.reasoning.plan import ReasoningSupport

EMBEDDED_LIKE = ReasoningSupport(force_prefix=True, two_phase=True)
SKY = "Why is the sky blue?"


@pytest.mark.parametrize(("answer", "question", "earlier", "why"), [
    ("84", SKY, [("What is 7 times 12?", "84")], "repeats an earlier answer"),
    ("熊猫吃竹子。", "熊猫住在哪里？", [("熊猫吃什么？", "熊猫吃竹子")],
     "repeats an earlier answer"),
    ("0", "Tell me a story about the sea.", [], "only a number"),
    ("0", "给我讲一个关于大海的故事。", [], "only a number"),
    ("……！", "你好", [], "only punctuation"),
    ("?!", "hello", [], "only punctuation"),
    ("the the the the the", "Describe a cat.", [], "over and over"),
    ("哈哈哈哈哈哈哈哈哈哈哈哈哈哈", "讲个笑话", [], "over and over"),
])
def test_degenerate_answers_are_named(answer, question, earlier, why):
    assert why in degenerate_answer(answer, question, earlier)


@pytest.mark.parametrize(("answer", "question", "earlier"), [
    ("84", "What is 7 times 12?", []),
    ("84", "What is 12 times 7?", [("What is 7 times 12?", "84")]),  # the same number, rightly
    ("42", "一支笔 3 元，14 支笔多少钱？", []),
    ("10000", "How many grains?", []),
    ("1969", "When did people first walk on the moon?", []),
    ("Yes", "Is 11 prime?", [("Is 7 prime?", "Yes")]),
    ("是的", "北京是中国的首都吗？", [("上海在中国吗？", "是的")]),
    ("熊猫吃竹子。", "熊猫吃什么？", [("熊猫吃什么？", "熊猫吃竹子")]),  # asked again
    ("哈哈哈哈", "讲个笑话", []),  # a short laugh is no loop
    ("Paris", "What is the capital of France?", [("What is the capital of Italy?", "Rome")]),
    ("", SKY, []),  # empty: `Reply.no_answer` says so
])
def test_real_answers_pass(answer, question, earlier):
    assert degenerate_answer(answer, question, earlier) == ""


def test_a_repeated_answer_is_shown_as_none_and_kept_out_of_the_history(scripted):
    client = scripted(["<think>7 times 12 is 84.</think>84"],
                      ["<think>The sky scatters blue light.</think>84"],
                      ["<think>Rayleigh scattering.</think>Because air scatters blue light more."],
                      models=["plain:1b"], support=EMBEDDED_LIKE)
    conv = Conversation("plain:1b", client=client, think=True)
    first = conv.send("What is 7 times 12?")
    assert first.status == "ok" and not first.degenerate
    second = conv.send(SKY)
    assert second.answer == "84"  # shown as it came, but never as a fine answer
    assert second.status == "no answer: it repeats an earlier answer word for word"
    assert any("no real answer after its reasoning" in n and "reason first" in n
               for n in second.notes)
    assert "[no answer: it repeats" in second.text()
    assert "dskit-note" in second._repr_html_() and "it repeats" in second._repr_html_()
    assert [m["content"] for m in conv.history] == ["What is 7 times 12?", "84"]  # not sent back
    third = conv.send(SKY)  # the history holds no "84" for the sky question
    assert third.status == "ok"
    assert client.backend.requests[2].messages[-3:-1] == [
        {"role": "user", "content": "What is 7 times 12?"}, {"role": "assistant", "content": "84"}]


def test_an_empty_answer_after_reasoning_says_what_to_try(scripted):
    client = scripted(["<think>春天来了，花开了。</think>"], models=["plain:1b"],
                      support=EMBEDDED_LIKE)
    reply = client.chat("写一首关于春天的短诗。", think=True)
    assert reply.no_answer and reply.status == "no answer after its reasoning"
    assert any("no answer after its reasoning" in n and "max tokens" in n for n in reply.notes)


def test_a_bare_number_to_a_free_prompt_is_flagged_in_chinese_too(scripted):
    client = scripted(["<think>大海很大。</think>0"], models=["plain:1b"], support=EMBEDDED_LIKE)
    reply = client.chat("给我讲一个关于大海的故事。", think=True)
    assert reply.degenerate and reply.status.startswith("no answer: only a number")


def test_structured_and_stopped_replies_are_not_judged(scripted):
    client = scripted(["[1, 2]"], models=["plain:1b"])
    reply = client.chat("Give two small primes as JSON.", format="json")  # no number asked
    assert not reply.degenerate and reply.status == "ok"
