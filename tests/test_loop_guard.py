"""The loop guard: degenerate repetition stops a reply; legitimate long replies never do."""

from __future__ import annotations

import random

import pytest

import dskit as ds
from dskit.backends.base import Delta, Done
from dskit.reasoning.loop_guard import LoopGuard, find_loop, has_degenerate_run
from dskit.reply import Stats

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"


def feed_in_pieces(text: str, seed: int = 0) -> int | None:
    """Feed `text` in random pieces (1 to 6 characters, like tokens); where the guard tripped."""
    guard, rng, pos = LoopGuard(), random.Random(seed), 0
    while pos < len(text):
        step = rng.randint(1, 6)
        if guard.feed(text[pos:pos + step]) is not None:
            return pos + step
        pos += step
    return None


def _table(rows: int) -> str:
    head = "| # | name | score | note |\n|---|---|---|---|\n"
    return head + "".join(f"| {i} | student{i} | {60 + i % 40} | ok |\n" for i in range(rows))


def _code() -> str:
    body = "".join(f"    assert add({i}, {i}) == {2 * i}\n" for i in range(40))
    return ("```python\ndef add(a, b):\n    return a + b\n\n\ndef test_add():\n" + body
            + "    print('done')\n    print('done')\n    print('done')\n```\n")


#: Long legitimate replies (all well over the guard's 360 bytes), English and Chinese.
LEGITIMATE = {
    "counting": ", ".join(str(i) for i in range(1, 400)),
    "counting-zh": "，".join(f"第{i}个" for i in range(1, 200)),
    "numbered-list": "".join(f"{i}. Item number {i} on the list\n" for i in range(1, 60)),
    "numbered-list-same-text": "".join(f"{i}. Buy milk\n" for i in range(1, 80)),
    "bullets": "".join(f"- step {i}: mix, wait, check\n" for i in range(60)),
    "table": _table(50),
    "table-zh": "| 序号 | 名称 |\n|---|---|\n" + "".join(f"| {i} | 第{i}项 |\n"
                                                        for i in range(80)),
    "code-repeated-lines": _code(),
    "code-loop": "for i in range(10):\n    total += i\n" * 5 + "print(total)\n" * 3
                 + "".join(f"x{i} = {i}\n" for i in range(120)),
    "haha-zh": "哈哈哈哈哈哈，真有意思！" + "这是一段很长的中文回答。" * 3
               + "".join(f"第{i}点：注意休息。" for i in range(60)),
    "chinese-repeated-chars": "谢谢谢谢！好好好！" + "".join(f"天天向上{i}。" for i in range(120)),
    "ellipsis": "嗯……" * 5 + "".join(f"想法{i}……" for i in range(100)),
    "separator": "=" * 80 + "\n" + "".join(f"Section {i}\n" + "-" * 40 + "\n"
                                            for i in range(20)),
    "markdown-rules": "".join(f"## Part {i}\n\ntext {i}\n\n---\n\n" for i in range(40)),
    "matrix": "\n".join("[" + ", ".join(str((r * c) % 7) for c in range(12)) + "]"
                        for r in range(30)),
    "zero-matrix-small": "\n".join(["[0, 0, 0, 0, 0, 0, 0, 0]"] * 8) + "\n" + "done. " * 3
                         + "".join(f"row {i} sums to {i * 3}\n" for i in range(40)),
    "times-table": "".join(f"{a} × {b} = {a * b}\n" for a in range(1, 10)
                           for b in range(1, 10)),
    "alphabet": " ".join(chr(65 + i % 26) + str(i) for i in range(300)),
    "json": "[" + ", ".join(f'{{"id": {i}, "ok": true}}' for i in range(80)) + "]",
    "csv": "id,value\n" + "".join(f"{i},{i * i}\n" for i in range(150)),
    "poem-refrain": "".join(f"Verse {i}: the river runs, the river runs to the sea.\n"
                            "La la la, la la la.\n" for i in range(20)),
    "steps-zh": "".join(f"步骤{i}：把水烧开，然后等待{i}分钟。\n" for i in range(1, 50)),
    "fizzbuzz": "\n".join("FizzBuzz" if i % 15 == 0 else "Fizz" if i % 3 == 0 else
                          "Buzz" if i % 5 == 0 else str(i) for i in range(1, 200)),
    "dates": "".join(f"2024-01-{d:02d}: sunny\n" for d in range(1, 32)) * 2,
    "html": "<ul>\n" + "".join(f"  <li>item {i}</li>\n" for i in range(80)) + "</ul>\n",
    "math-derivation": "".join(f"x_{i} = x_{i - 1} + {i} = {i * (i + 1) // 2}\n"
                               for i in range(1, 70)),
    "reasoning": "".join(f"Let me check case {i}. If the ball is in the cup, then moving "
                         f"the cup moves the ball. Case {i} fails.\n" for i in range(15)),
    "reasoning-zh": "".join(f"再检查一次第{i}种情况：杯子倒扣在床上，球留在床上。\n"
                            for i in range(30)),
    "sql": "INSERT INTO t VALUES\n" + ",\n".join(f"  ({i}, 'name{i}', {i % 3})"
                                                 for i in range(80)) + ";",
    "spaces-code": "def f():\n" + "".join(f"    if x == {i}:\n        return {i}\n"
                                          for i in range(60)),
    "pinyin": " ".join(f"ni{i % 5} hao{i % 3} ({i})" for i in range(150)),
    "emoji": " ".join(f"{i}⭐" for i in range(200)),
}

#: Degenerate loops as the stand-ins produce them: one character, a phrase, a paragraph.
LOOPS = {
    "exclamation": "杯子里的球在哪里？" + "！" * 2000,
    "phrase": "The answer is: " + "the ball is in the cup. " * 100,
    "chinese-phrase": "答案：" + "球在杯子里。" * 300,
    "paragraph": "Let me think. " + ("Wait, I need to check this again. The cup was turned "
                                     "upside down on the bed, so the ball fell out. ") * 30,
    "newlines": "Answer:" + "\n" * 1000,
    "numbers": "3" * 1200,
}


def test_there_are_at_least_thirty_long_legitimate_replies():
    assert len(LEGITIMATE) >= 30
    assert all(len(text) > 600 for text in LEGITIMATE.values()), \
        [k for k, v in LEGITIMATE.items() if len(v) <= 600]


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_legitimate_replies_are_never_stopped(name: str):
    text = LEGITIMATE[name]
    for seed in range(3):  # whatever the chunking
        assert feed_in_pieces(text, seed) is None, name
    assert find_loop(text) is None


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_loops_are_stopped_soon(name: str):
    text = LOOPS[name]
    at = feed_in_pieces(text)
    assert at is not None, name
    # Stopped within the minimum span (plus the text before the loop and one check interval),
    # far before the end.
    loop = find_loop(text[:at])
    assert loop is not None and loop.repeats >= 10
    assert len(text[:at].encode()) >= 360  # never before 360 bytes of text
    assert at < len(text) and at < max(360, 10 * len(loop.unit)) + len(loop.unit) + 80


def test_the_unit_found_is_the_shortest():
    loop = find_loop("x" + "ab" * 400)
    assert loop is not None and loop.unit in ("ab", "ba") and loop.repeats == 400
    assert find_loop("！" * 119) is None and find_loop("！" * 120) is not None  # 360 bytes
    assert "repeated" in loop.note() and "loop_guard=False" in loop.note()


def test_a_loop_that_gives_way_to_new_text_is_not_stopped_later():
    text = "ha" * 170 + "".join(f" then {i}" for i in range(100))  # 340 bytes of "ha": too few
    assert feed_in_pieces(text) is None


def test_graders_and_guard_share_the_module():
    assert has_degenerate_run("the answer is bed bed bed bed bed")
    assert has_degenerate_run("球在床上床上床上床上床上")
    assert not has_degenerate_run("在床上……") and not has_degenerate_run("the bed, the bed")
    assert ds.grading.cup_place("球在床上" * 6) is None  # a loop is not an answer


def test_chat_stops_a_looping_stream_and_keeps_the_text(scripted):
    pieces = ["The ball"] + ["！"] * 3000
    client = scripted(pieces)
    reply = client.chat("Where is the ball?", loop_guard=True)
    assert reply.done_reason == "repetition"
    assert reply.status == "looped: stopped repeating itself (loop guard)"
    # "！" is 3 bytes: stopped after 120 of them (and at most one check interval more).
    assert reply.answer.startswith("The ball！") and 120 <= reply.answer.count("！") < 160
    assert any("loop guard" in n for n in reply.notes)
    assert client.backend.closed == [True]  # the backend's stream was closed: generation ends
    assert reply.stats.eval_tokens and reply.stats.eval_tokens < 200
    assert "looped" in reply.footer(with_status=True)


def test_without_the_guard_the_loop_runs_to_the_end(scripted):
    client = scripted(["！"] * 3000)
    reply = client.chat("Where is the ball?")  # chat: off unless asked
    assert reply.done_reason == "stop" and reply.answer.count("！") == 3000


def test_a_loop_inside_reasoning_has_no_answer(scripted):
    client = scripted([Delta("thinking", "hmm ")] * 400 + [Delta("answer", "never"), Done(
        Stats(), "stop")])
    reply = client.chat("q", loop_guard=True)
    assert reply.done_reason == "repetition" and reply.no_answer
    assert reply.status == "no answer: stopped repeating itself (loop guard)"


def test_conversation_keeps_a_looped_turn_out_of_the_history(scripted):
    client = scripted(["la"] * 1000, ["fine"])
    conv = ds.Conversation(client=client, loop_guard=True)
    assert conv.send("sing").done_reason == "repetition"
    assert conv.history == []
    assert conv.send("again").answer == "fine" and len(conv.history) == 2


# --- real model output ---------------------------------------------------------------------

#: Requests for long, structured replies that the stand-ins answer without looping.
REAL_LEGITIMATE = [
    (QWEN, "Write a Markdown table of the numbers 1 to 30 with their squares and cubes."),
    (QWEN, "Write Python unit tests that check add(i, i) == 2*i for i from 0 to 25, one "
           "assert per line."),
    (QWEN, "Write a Python function number_name(n) that returns the English name of each "
           "number from 1 to 20, with one if-statement per number."),
    (QWEN, "用 Python 写一个函数，把 1 到 12 月的中文名称和每个月的天数打印成一个表格，并写注释。"),
    (SMALL, "List 40 different fruits as a numbered list."),
    (SMALL, "Count from 1 to 100, separated by commas."),
    (SMALL, "Write a numbered list of 30 countries and their capitals."),
]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "prompt"), REAL_LEGITIMATE)
def test_real_long_replies_are_not_stopped(embedded_client: ds.Client, model: str,
                                           prompt: str):
    reply = embedded_client.chat(prompt, model, max_tokens=400, temperature=0, seed=7,
                                 loop_guard=True)
    assert reply.done_reason != "repetition", reply.answer[-300:]
    assert len(reply.answer) > 300


@pytest.mark.slow
def test_a_real_loop_is_stopped(embedded_client: ds.Client):
    """smollm2 on the Chinese cup puzzle prints "！" until the token limit (4,093 tokens)."""
    prompt = ds.prompts.cup_puzzle("zh").prompt
    reply = embedded_client.chat(prompt, SMALL, max_tokens=2048, temperature=0, seed=1,
                                 loop_guard=True)
    assert reply.done_reason == "repetition", reply.answer[-200:]
    assert reply.stats.eval_tokens is not None and reply.stats.eval_tokens < 1000
    assert find_loop(reply.answer) is not None
