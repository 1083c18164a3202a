"""The chat widget's handlers, driven without a browser on the real embedded model."""

from __future__ import annotations

import threading
import time

import pytest

import dskit as ds
from dskit.weights import files as model_files
from tests.rawhttp import chunked_head, ndjson_lines, send_json

SMALL = "smollm2:135m"


def test_send_streams_a_reply_into_the_history(embedded_client):
    w = ds.widgets.chat(client=embedded_client, model=SMALL, max_tokens=12, think=False)
    assert SMALL in w.model.options and w.stop_button.disabled
    w.prompt.value = "Say hi <b>bold</b>"
    w.send(wait=True)
    assert w.prompt.value == ""
    assert "Say hi &lt;b&gt;bold&lt;/b&gt;" in w.history.value  # the prompt is escaped too
    assert "dskit-answer" in w.history.value
    assert "tok/s" in w.status.value
    assert "class=\"dskit-stats\"" not in w.history.value  # stats: once, on the status line
    assert not w.send_button.disabled and w.stop_button.disabled
    assert len(w.conversation.history) == 2
    w.prompt.value = "And again"
    w.send(wait=True)
    assert len(w.conversation.history) == 4
    w.reset()
    assert w.conversation.history == [] and w.history.value == ""


def test_stop_button_stops_generation(embedded_client):
    w = ds.widgets.chat(client=embedded_client, model=SMALL, max_tokens=400)
    started = threading.Event()
    original = w._run

    def run(text):
        started.set()
        original(text)

    w._run = run
    w.prompt.value = "Write a very long story about the sea."
    w.send()
    assert started.wait(30)
    while w.busy and w.status.text not in ("reasoning…", "answering…"):  # tokens arrive
        threading.Event().wait(0.01)
    w.stop_button.click()
    w.wait(120)
    assert not w.busy
    assert "stopped" in w.status.value
    assert w.conversation.history == []  # a stopped turn is not kept


def test_errors_are_shown_in_the_widget(embedded_client):
    w = ds.widgets.chat(client=embedded_client, model=SMALL)
    w.model.options = [*w.model.options, "missing:1b"]
    w.model.value = "missing:1b"
    w.prompt.value = "hello"
    w.send(wait=True)
    assert "not available" in w.status.value and SMALL in w.status.value
    assert not w.busy and not w.send_button.disabled


def test_reason_first_shows_reasoning_then_the_answer(embedded_client):
    w = ds.widgets.chat(client=embedded_client, model=SMALL, max_tokens=120)
    assert w.think.value is True
    w.prompt.value = "What is 2 + 2?"
    w.send(wait=True)
    shown = w.history.value or w.output.value
    assert "<details" in shown and "Reasoning" in shown, shown
    assert "dskit-answer" in shown or "no answer" in shown


def test_r1_reasoning_appears_as_a_collapsible_block(embedded_client):
    ds.register_gguf("deepseek-r1:widget-test", model_files.model_path(SMALL))
    try:
        w = ds.widgets.chat(client=embedded_client, model="deepseek-r1:widget-test", max_tokens=10)
        w.prompt.value = "Why?"
        w.send(wait=True)
        # every turn moves to the history, one that ended without an answer too
        assert "<details" in w.history.value and "Reasoning" in w.history.value
        assert "no answer" in w.history.value and w.output.value == ""
    finally:
        model_files._registered.pop("deepseek-r1:widget-test", None)
        embedded_client.backend.unload("deepseek-r1:widget-test")


def test_compare_widget_runs_and_shows_table_and_plot(embedded_client):
    w = ds.widgets.compare(client=embedded_client, models=[SMALL], prompts="cup-en", max_tokens=8)
    assert w.models.value == (SMALL,) and w.stop_button.disabled
    assert w.plot.layout.display == "none"  # no broken-image icon before there is a plot
    w.run(wait=True)
    assert "pass@1" in w.table.value and SMALL in w.table.value
    assert bytes(w.plot.value).startswith(b"\x89PNG") and w.plot.layout.display == ""
    # every answer is listed with its verdict and how it ended (8 tokens: cut off)
    assert "dskit-answers-table" in w.answers.value and "on the bed" in w.answers.value
    assert "cut by the token limit" in w.answers.value
    assert "1 cut by the token limit" in w.status.value
    assert w.progress.value == w.progress.max == 1
    assert "done: 1 of 1" in w.status.value
    assert len(w.result) == 1 and not w.run_button.disabled


def test_compare_widget_stop_keeps_finished_rows(embedded_client):
    w = ds.widgets.compare(client=embedded_client, models=[SMALL], prompts="cup-en", samples=6,
                           max_tokens=8)
    original = w._tick

    def tick(row):
        original(row)
        w.stop_button.click()  # as a user would, while the run is going

    w._tick = tick
    with pytest.warns(UserWarning, match="interrupted"):
        w.run(wait=True)
    assert "stopped" in w.status.value
    assert 1 <= len(w.result) < 6
    assert w.stop_button.disabled and not w.run_button.disabled


def test_compare_widget_needs_a_model(embedded_client):
    w = ds.widgets.compare(client=embedded_client, models=[SMALL])
    w.models.value = ()
    w.run(wait=True)
    assert "pick at least one model" in w.status.value and not w.busy


def test_example_questions_are_graded(embedded_client):
    w = ds.widgets.chat(client=embedded_client, max_tokens=300, think=False)
    cup = next(e for e in w.examples.options if e[1] == "cup-zh")
    w.examples.value = cup[1]
    assert w.prompt.value == ds.prompts.cup_puzzle("zh").prompt
    w.send(wait=True)
    assert w.examples.value == ""
    assert w.last_reply is not None and w.last_reply.verdict is not None
    assert "expected 在床上" in w.status.text and w.status.text[0] in "✓✗"
    assert "dskit-verdict" in w.history.value
    assert "stand-in model, not DeepSeek-R1" in w.notice.value  # the page says what answers


def test_a_stopped_turn_stays_on_the_page_marked_as_yours(embedded_client):
    w = ds.widgets.chat(client=embedded_client, model=SMALL, max_tokens=600)
    w.prompt.value = "Write a very long story about the sea."
    w.send()
    while w.busy and w.status.text not in ("reasoning…", "answering…"):
        threading.Event().wait(0.01)
    w.stop()
    w.wait(120)
    assert "stopped by you" in w.status.text and "model returned" not in w.history.value
    w.think.value = False
    w.max_tokens.value = 8
    w.prompt.value = "Hi"
    w.send(wait=True)
    assert "very long story" in w.history.value and "Hi" in w.history.value  # both turns
    assert len(w.conversation.history) == 2  # only the finished one goes back to the model


def stalled_ollama(raw_server):
    """An Ollama that answers /api/chat with a few words and then nothing (a stalled server)."""
    box = []

    def chat(conn, _request):
        chunked_head(conn)
        ndjson_lines(conn, {"model": "llama3.2:latest", "created_at": "2025-06-01T08:52:19Z",
                            "message": {"role": "assistant", "content": "Partial answer"},
                            "done": False})
        box[0].linger(conn, 30)  # then silence

    box.append(raw_server({
        "/api/version": send_json({"version": "0.9.0"}),
        "/api/tags": send_json({"models": [{"name": "llama3.2:latest",
                                            "model": "llama3.2:latest", "size": 1}]}),
        "/api/show": send_json({"details": {"family": "llama"}, "model_info": {},
                                "capabilities": ["completion"]}),
        "/api/chat": chat}))
    return box[0]


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_stop_frees_the_widget_when_the_server_stalls(raw_server):
    server = stalled_ollama(raw_server)
    client = ds.connect("ollama", host=server.url, set_default=False)
    w = ds.widgets.chat(client=client, model="llama3.2:latest", think=False)
    w.prompt.value = "hello"
    w.send()
    wait_for(lambda: "Partial answer" in w.output.value)  # the stream is stalled after this
    assert w.busy and w.send_button.disabled and not w.stop_button.disabled
    w.stop_button.click()
    w.wait(10)  # bounds a hang only
    assert not w.busy and not w.send_button.disabled and w.stop_button.disabled
    assert w.status.state == "stopped" and "Partial answer" in w.history.value  # kept
    assert server.client_closed.wait(10)


def test_compare_stop_frees_the_widget_when_the_server_stalls(raw_server):
    server = stalled_ollama(raw_server)
    client = ds.connect("ollama", host=server.url, set_default=False)
    w = ds.widgets.compare(client=client, models=["llama3.2:latest"], prompts="cup-en",
                           max_tokens=8)
    w.run()
    wait_for(lambda: any(r.path == "/api/chat" for r in server.requests))
    assert server.client_closed.wait(0.5) is False  # the reply hangs
    w.stop_button.click()
    w.wait(10)  # bounds a hang only
    assert not w.busy and not w.run_button.disabled and w.stop_button.disabled
    assert "stopped" in w.status.value
    assert server.client_closed.wait(10)


def test_thinking_budget_in_the_chat_widget(embedded_client):
    w = ds.widgets.chat(client=embedded_client, model="qwen2.5-coder:0.5b", max_tokens=80,
                        think_budget=6)
    assert w.think_budget.value == 6 and "no limit" in dict(w.think_budget.options)
    assert ds.widgets.chat(client=embedded_client).think_budget.label == "no limit"  # shown
    w.prompt.value = "What is 6 × 7?"
    w.send(wait=True)
    assert w.last_reply is not None and w.last_reply.budget_hit
    assert "reasoning cut at its budget" in w.status.text
    assert "Time is up" in w.history.value  # the wrap-up line is shown with the reasoning


def test_chat_widget_stops_a_loop(scripted):
    w = ds.widgets.chat(client=scripted(["The ball"] + ["！"] * 3000), max_tokens=4000)
    w.prompt.value = "Where is the ball?"
    w.send(wait=True)
    assert "looped: stopped repeating itself (loop guard)" in w.status.text
    assert w.last_reply is not None and w.last_reply.done_reason == "repetition"


def test_chat_widget_says_done_only_once_the_turn_is_on_the_page(scripted):
    """The status line is what a browser (and a learner) waits for: when it says done, the
    reply is already in the history, not still on its way there."""
    w = ds.widgets.chat(client=scripted(["熊猫主要吃竹子。"]), max_tokens=64)
    seen: list[tuple[str, str]] = []
    w.status.observe(lambda change: seen.append((change["new"], w.history.value)),
                     names="value")
    w.prompt.value = "熊猫吃什么？"
    w.send(wait=True)
    finals = [history for status, history in seen if "data-state='done'" in status]
    assert finals and all("熊猫主要吃竹子" in history for history in finals)
    assert w.output.value == ""


def test_chat_widget_shows_a_repeated_answer_as_no_answer(scripted):
    from dskit.reasoning.plan import ReasoningSupport

    client = scripted(["<think>7 乘 12 等于 84。</think>84"], ["<think>天空散射蓝光。</think>84"],
                      support=ReasoningSupport(force_prefix=True, two_phase=True))
    w = ds.widgets.chat(client=client, max_tokens=200)
    assert w.think.value is True  # "reason first", the default
    w.prompt.value = "7 乘 12 等于几？"
    w.send(wait=True)
    assert w.status.state == "done" and "no answer" not in w.status.text
    w.prompt.value = "天空为什么是蓝色的？"
    w.send(wait=True)
    assert w.status.text.startswith("no answer: it repeats an earlier answer"), w.status.text
    last = w.history.value.rsplit("<b>You:</b>", 1)[1]
    assert "天空为什么是蓝色的" in last and "[no answer: it repeats an earlier answer" in last
    assert "no real answer after its reasoning" in last and "reason first" in last
    assert len(w.conversation.history) == 2  # the repeat is not sent back as history


def test_every_widget_row_of_controls_wraps(scripted, tmp_path):
    def rows(widget):
        found, todo = [], [widget]
        while todo:
            node = todo.pop()
            if "dskit-controls" in node._dom_classes:
                found.append(node)
            todo.extend(getattr(node, "children", ()))
        return found

    client = scripted([])
    chat_rows = rows(ds.widgets.chat(client=client))
    assert len(chat_rows) == 2 and all(r.layout.flex_flow == "row wrap" for r in chat_rows)
    classes = {c for r in chat_rows for w in r.children for c in w._dom_classes}
    assert {"dskit-think", "dskit-think-budget", "dskit-send", "dskit-examples"} <= classes
    compare_rows = rows(ds.widgets.compare(client=client, models=["fake:1b"]))
    assert len(compare_rows) == 2 and all(r.layout.flex_flow == "row wrap" for r in compare_rows)


def test_chat_widget_shades_a_reply_by_confidence_when_asked(scripted):
    from dskit.backends.base import Delta, Token

    def tokens(text, *top):
        return (Token(text, top[0], ((text, top[0]), ("其他", top[1]))),)

    script = [Delta("answer", "熊猫", tokens("熊猫", -0.05, -4.0)),
              Delta("answer", "吃竹子", tokens("吃竹子", -0.9, -1.1))]
    client = scripted(script, script)
    w = ds.widgets.chat(client=client, max_tokens=64)
    w.prompt.value = "熊猫吃什么？"
    w.send(wait=True)
    assert client.backend.requests[0].logprobs is None and "dskit-conf" not in w.history.value
    w.confidence.value = True
    w.prompt.value = "熊猫吃什么？"
    w.send(wait=True)
    assert client.backend.requests[1].logprobs == 5
    last = w.history.value.rsplit("<b>You:</b>", 1)[1]
    assert "Token confidence (top-2" in last and 'class="dskit-conf-low"' in last
    assert "p 0.41" in last  # 吃竹子's probability, on hover


def test_compare_widget_answers_keep_the_whole_answer_and_its_verdict():
    from dskit.widgets.compare_widget import FOLD, answers_html

    long = "先算 45 + 38：" + "一步一步地算，" * 60 + "所以答案是 \\boxed{83}。<script>x</script>"
    rows = [
        {"model": "qwen2.5-coder:0.5b", "prompt": "计算：45 + 38 等于多少？", "answer": long,
         "expected": "83", "correct": True, "done_reason": "stop", "error": None},
        {"model": "smollm2:135m", "prompt": "计算：45 + 38 等于多少？", "answer": "73",
         "expected": "83", "correct": False, "done_reason": "length", "error": None},
        {"model": "smollm2:135m", "prompt": "What is 6 + 7?", "answer": "", "expected": "13",
         "correct": None, "done_reason": None, "error": "ModelError: out of memory"},
    ]
    page = answers_html(rows)
    assert len(long) > FOLD and "\\boxed{83}" in page  # folded, not cut: the number is there
    assert "<details>" in page and "<script>" not in page and "&lt;script&gt;" in page
    assert "✓ expected 83" in page and "✗ expected 83" in page
    assert "cut by the token limit" in page and "error: ModelError: out of memory" in page
    assert "dskit-scroll" in page  # a wide table scrolls inside the output area
