"""Thinking budgets on every backend: the real embedded models, Ollama's and vLLM's shapes on a
local HTTP server, and Ollama's API end to end through `dskit serve`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

import dskit as ds
from dskit.backends.chat_template import chatml, deepseek, render
from dskit.backends.embedded import EmbeddedBackend
from dskit.backends.openai import OpenAIBackend
from dskit.errors import BudgetUnsupported, ConfigurationError
from dskit.reasoning.plan import WRAP_UP, ReasoningSupport, Traits, plan_reasoning
from dskit.weights import files as model_files

QWEN = "qwen2.5-coder:0.5b"
R1 = "deepseek-r1:7b"
R1_STANDIN = "deepseek-r1-standin:0.5b"
NDJSON = "application/x-ndjson"
QUESTION = "What is 12 + 30? Think it through."


# --- the plan ---------------------------------------------------------------------------------

def test_a_budget_asks_for_reasoning_and_is_kept_in_the_plan():
    plan = plan_reasoning(Traits(), None, ReasoningSupport(two_phase=True), 64)
    assert plan.think is True and plan.two_phase and plan.budget == 64
    r1 = plan_reasoning(Traits(reasoning=True, r1=True, system_prompt_ok=True), None,
                        ReasoningSupport(force_prefix=True), 32)
    assert r1.prefix == "<think>\n" and r1.budget == 32  # forced even for R1-0528
    assert plan_reasoning(Traits(), None, ReasoningSupport()).budget is None


def test_budget_and_think_false():
    with pytest.raises(ConfigurationError, match="think=False"):
        plan_reasoning(Traits(), False, ReasoningSupport(), 64)
    plan = plan_reasoning(Traits(), False, ReasoningSupport(), 0)  # the same thing said twice
    assert plan.think is False and plan.budget is None


@pytest.mark.parametrize("bad", [-1, 1.5, "64", True])
def test_bad_budgets_are_refused(bad: Any):
    with pytest.raises(ConfigurationError, match="think_budget"):
        plan_reasoning(Traits(), None, ReasoningSupport(), bad)


def test_a_budget_where_nothing_can_reason_is_dropped_with_the_note():
    plan = plan_reasoning(Traits(), None, ReasoningSupport(), 64)
    assert plan.budget is None and plan.notes


# --- embedded: native, two phases -------------------------------------------------------------

def test_embedded_budget_cuts_and_answers(embedded_client: ds.Client):
    reply = embedded_client.chat(QUESTION, QWEN, think=True, think_budget=12, max_tokens=200,
                                 temperature=0, seed=3)
    assert reply.budget_hit
    assert reply.thinking.endswith(WRAP_UP["en"])
    closing = 25  # the wrap-up line, `</think>` and a blank line, in tokens
    assert 12 < reply.stats.thinking_tokens <= 12 + closing
    assert reply.answer and reply.status == "ok"
    assert any("budget of 12 tokens" in n for n in reply.notes)
    assert "reasoning cut at its budget" in reply.footer()


def test_embedded_budget_that_is_not_reached_changes_nothing(embedded_client: ds.Client):
    kwargs = {"think": True, "max_tokens": 160, "temperature": 0, "seed": 5}
    plain = embedded_client.chat(QUESTION, QWEN, **kwargs)
    budgeted = embedded_client.chat(QUESTION, QWEN, think_budget=2000, **kwargs)
    assert not budgeted.budget_hit and not plain.budget_hit
    assert (budgeted.thinking, budgeted.answer) == (plain.thinking, plain.answer)
    assert budgeted.stats.thinking_tokens == plain.stats.thinking_tokens
    assert not any("budget" in n for n in budgeted.notes)


def test_embedded_zero_budget_answers_without_reasoning(embedded_client: ds.Client):
    reply = embedded_client.chat("小明有 5 个苹果，又买了 4 个。他现在有几个苹果？", QWEN,
                                 think_budget=0, max_tokens=60, temperature=0)
    assert reply.thinking == "" and reply.answer
    assert reply.stats.thinking_tokens == 0 and reply.budget_hit
    assert any("without reasoning" in n for n in reply.notes)


def test_embedded_budget_wraps_up_in_chinese(embedded_client: ds.Client):
    reply = embedded_client.chat("一个球放在杯子里，杯子倒扣在床上后拿走。球在哪里？", QWEN,
                                 think=True, think_budget=8, max_tokens=120, temperature=0)
    assert reply.budget_hit and reply.thinking.endswith(WRAP_UP["zh"])


def test_embedded_budget_on_an_r1_model(embedded_client: ds.Client, r1_standin: str):
    """An R1 GGUF (here the stand-in's file under an R1 name) starts from the forced
    "<think>\\n", is cut, and answers after `</think>`, with no reasoning instruction."""
    stream = embedded_client.chat(QUESTION, r1_standin, think_budget=10, max_tokens=120,
                                  temperature=0, stream=True)
    chunks = list(stream)
    reply = stream.reply
    assert reply.budget_hit and reply.answer and reply.thinking.endswith(WRAP_UP["en"])
    kinds = [c.kind for c in chunks]
    assert kinds[0] == "thinking" and kinds[-1] == "answer"
    assert kinds.index("answer") > max(i for i, k in enumerate(kinds) if k == "thinking")


@pytest.fixture
def r1_standin(embedded: EmbeddedBackend) -> Iterator[str]:
    """The stand-in's file under an R1 name: the path a DeepSeek-R1 GGUF takes."""
    model_files.register_gguf(R1_STANDIN, model_files.model_path(QWEN))
    try:
        yield R1_STANDIN
    finally:
        embedded.unload(R1_STANDIN)
        model_files._registered.pop(R1_STANDIN, None)


def test_r1_budget_that_is_not_reached_is_the_same_single_pass(embedded_client: ds.Client,
                                                                embedded: EmbeddedBackend,
                                                                r1_standin: str):
    """On an R1 model a budget is a stopping criterion on one pass: never reached, the reply
    is token for token the one without a budget."""
    kwargs = {"max_tokens": 90, "temperature": 0, "seed": 7}
    llm = embedded.load(r1_standin).llm

    def ask(question: str, **extra: Any) -> ds.Reply:
        # From an empty cache both times: a prompt evaluated in other batches can tip a greedy
        # near-tie (llama.cpp's sums are not bit-identical across batch splits).
        llm.reset()
        return embedded_client.chat(question, r1_standin, **kwargs, **extra)

    for question in (QUESTION, "小明有 5 个苹果，又买了 4 个。他现在有几个苹果？"):
        plain, budgeted = ask(question), ask(question, think_budget=5000)
        assert (budgeted.thinking, budgeted.answer) == (plain.thinking, plain.answer)
        assert budgeted.thinking
        assert budgeted.stats.eval_tokens == plain.stats.eval_tokens
        assert budgeted.done_reason == plain.done_reason
        assert budgeted.stats.thinking_tokens <= budgeted.stats.eval_tokens
        assert not budgeted.budget_hit and not any("budget" in n for n in budgeted.notes)


def test_r1_cut_continues_from_the_models_own_tokens(embedded_client: ds.Client,
                                                      embedded: EmbeddedBackend,
                                                      r1_standin: str,
                                                      monkeypatch: pytest.MonkeyPatch):
    """At the cut llama.cpp evaluates only the closing text: the reasoning's ids stay cached,
    not re-tokenized from text."""
    llm = embedded.load(r1_standin).llm
    evaluated: list[int] = []
    real_eval = llm.eval
    monkeypatch.setattr(llm, "eval", lambda tokens: (evaluated.append(len(tokens)),
                                                     real_eval(tokens))[1])
    stream = embedded_client.chat(QUESTION, r1_standin, think_budget=8, max_tokens=120,
                                  temperature=0, stream=True)
    cut_at = None
    for _ in stream:
        if cut_at is None and WRAP_UP["en"] in stream.reply.thinking:
            cut_at = len(evaluated)  # evals so far: the prompt and the reasoning
    reply = stream.reply
    assert reply.budget_hit and reply.answer
    closing = len(llm.tokenize(f"\n\n{WRAP_UP['en']}\n</think>\n\n".encode(), add_bos=False,
                               special=True))
    assert reply.stats.thinking_tokens == 8 + closing
    # Evaluated after the cut: the closing text once (in batches), then one id per answer token.
    after = evaluated[cut_at:]
    assert max(after) <= closing + 1, after
    assert sum(after) <= closing + 1 + reply.stats.answer_tokens


def test_budget_cut_counts_reasoning_until_the_model_closes_it(embedded: EmbeddedBackend):
    """The stopping criterion, on ids from the real tokenizer: it counts the reasoning, notices
    a `</think>` however the tag was split into tokens, and never stops after it."""
    import numpy as np

    from dskit.backends.embedded import BudgetStop

    llm = embedded.load(QWEN).llm
    prompt = llm.tokenize(b"<|im_start|>user\nhi<|im_end|>\n", special=True)
    reasoning = llm.tokenize("Two and two. 想一想：四。".encode(), add_bos=False)
    after = llm.tokenize(b"\n</think>\n\nFour, a long answer to follow.", add_bos=False)
    ids = [*prompt, *reasoning, *after]
    closed = BudgetStop(llm, len(prompt), budget=len(reasoning) + 4)
    stops = [closed(np.array(ids[:i]), None) for i in range(len(prompt), len(ids) + 1)]
    assert not any(stops)  # closed within the budget, then answering past it
    tag_end = len(reasoning) + len(llm.tokenize(b"\n</think>", add_bos=False))
    assert closed.closed_at is not None and len(reasoning) < closed.closed_at <= tag_end
    open_ = BudgetStop(llm, len(prompt), budget=5)
    stops = [open_(np.array(ids[:i]), None) for i in range(len(prompt), len(ids) + 1)]
    assert stops.index(True) == 5 and open_.hit and open_(np.array(ids), None)


def test_budget_in_a_conversation_and_the_cli(embedded_client: ds.Client, dskit_cli):
    conv = ds.Conversation(QWEN, client=embedded_client, think=True, think_budget=8,
                           max_tokens=80, temperature=0)
    assert conv.send("What is 2 + 2?").budget_hit
    assert conv.history[-1]["content"] == conv.replies[-1].answer  # the answer, no reasoning
    out = dskit_cli("chat", "--backend", "embedded", "--model", QWEN, "--think-budget", "6",
                    "--max-tokens", "80", "What is 3 + 4?")
    assert out.returncode == 0, out.stderr
    assert "[thinking]" in out.stdout and WRAP_UP["en"] in out.stdout
    assert "reasoning cut at its budget" in out.stdout
    bad = dskit_cli("chat", "--backend", "embedded", "--think-budget", "-3", "hi")
    assert bad.returncode == 2 and "think-budget" in bad.stderr


# --- Ollama: the reasoning from /api/chat, the answer from a raw /api/generate ---------------

SHOW_R1 = {
    "template": "{{- if .System }}{{ .System }}{{ end }}\n{{- range $i, $_ := .Messages }}\n"
                "{{- if eq .Role \"user\" }}<｜User｜>{{ .Content }}\n{{- else if eq .Role "
                "\"assistant\" }}<｜Assistant｜>{{ .Content }}<｜end▁of▁sentence｜>{{ end }}"
                "{{ end }}<｜Assistant｜>",
    "details": {"format": "gguf", "family": "qwen2", "families": ["qwen2"]},
    "model_info": {"general.architecture": "qwen2",
                   "general.basename": "DeepSeek-R1-Distill-Qwen"},
    "capabilities": ["completion", "thinking"],
}
FINAL = {"total_duration": 5_000_000_000, "load_duration": 1_000_000,
         "prompt_eval_count": 40, "prompt_eval_duration": 100_000_000,
         "eval_count": 3, "eval_duration": 30_000_000}


def _chat_line(thinking: str = "", content: str = "", done: bool = False) -> str:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        msg["thinking"] = thinking
    body: dict[str, Any] = {"model": R1, "created_at": "2025-06-01T08:00:00Z", "message": msg,
                            "done": done}
    if done:
        body.update(done_reason="stop", **FINAL)
    return json.dumps(body)


def _generate_line(response: str, done: bool = False) -> str:
    body: dict[str, Any] = {"model": R1, "created_at": "2025-06-01T08:00:01Z",
                            "response": response, "done": done}
    if done:
        body.update(done_reason="stop", **FINAL)
    return json.dumps(body)


def _ollama(httpserver: HTTPServer, chat: list[str], generate: list[str] | None = None
            ) -> ds.Client:
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.9.0"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(SHOW_R1)
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    httpserver.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
        "\n".join(chat) + "\n", content_type=NDJSON)
    if generate is not None:
        httpserver.expect_oneshot_request("/api/generate", method="POST").respond_with_data(
            "\n".join(generate) + "\n", content_type=NDJSON)
    return ds.connect("ollama", host=httpserver.url_for(""), set_default=False)


def _bodies(httpserver: HTTPServer, path: str) -> list[dict[str, Any]]:
    return [req.get_json() for req, _ in httpserver.log if req.path == path]


def test_ollama_cuts_at_the_budget_and_continues_raw(httpserver: HTTPServer):
    thoughts = [_chat_line(thinking=f"step{i} ") for i in range(10)]
    client = _ollama(httpserver, [*thoughts, _chat_line(content="late"), _chat_line(done=True)],
                     [_generate_line("The answer "), _generate_line("is 42."),
                      _generate_line("", done=True)])
    reply = client.chat(QUESTION, R1, think_budget=4, max_tokens=100)
    assert reply.thinking.startswith("step0 step1 step2 step3")
    assert "step4" not in reply.thinking and reply.thinking.endswith(WRAP_UP["en"])
    assert reply.answer == "The answer is 42." and reply.budget_hit
    assert reply.stats.thinking_tokens == 4 and reply.stats.answer_tokens == 3
    chat_body = _bodies(httpserver, "/api/chat")[0]
    assert chat_body["think"] is True
    generate = _bodies(httpserver, "/api/generate")[0]
    assert generate["raw"] is True and generate["think"] is False and generate["stream"]
    assert generate["options"]["num_predict"] == 96  # what the reasoning left of max_tokens
    assert generate["prompt"] == (
        f"<｜User｜>{QUESTION}<｜Assistant｜><think>\nstep0 step1 step2 step3\n\n"
        f"{WRAP_UP['en']}\n</think>\n\n")
    assert "system" not in generate and "template" not in generate


def test_ollama_reply_within_its_budget_is_not_cut(httpserver: HTTPServer):
    client = _ollama(httpserver, [_chat_line(thinking="short"), _chat_line(content="42"),
                                  _chat_line(done=True)])
    reply = client.chat(QUESTION, R1, think_budget=4)
    assert (reply.thinking, reply.answer, reply.budget_hit) == ("short", "42", False)
    assert _bodies(httpserver, "/api/generate") == []


def test_ollama_zero_budget_skips_reasoning(httpserver: HTTPServer):
    client = _ollama(httpserver, [], [_generate_line("42"), _generate_line("", done=True)])
    reply = client.chat(QUESTION, R1, think_budget=0)
    assert reply.answer == "42" and reply.thinking == "" and reply.budget_hit
    assert _bodies(httpserver, "/api/generate")[0]["prompt"].endswith(
        "<｜Assistant｜><think>\n\n</think>\n\n")
    assert _bodies(httpserver, "/api/chat") == []


@pytest.mark.parametrize("budget", [0, 16])
def test_ollama_before_the_think_switch_refuses_a_budget(httpserver: HTTPServer, budget: int):
    """Ollama < 0.9 sends R1's reasoning inline: a budget is refused, not silently ignored."""
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.8.0"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(SHOW_R1)
    client = ds.connect("ollama", host=httpserver.url_for(""), set_default=False)
    with pytest.raises(BudgetUnsupported, match=r"0\.8\.0.*0\.9\.0 or later.*max_tokens"):
        client.chat(QUESTION, R1, think_budget=budget)
    assert _bodies(httpserver, "/api/chat") == [] == _bodies(httpserver, "/api/generate")


def test_ollama_template_of_another_family_is_refused_before_generating(
        httpserver: HTTPServer):
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.9.0"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(
        {**SHOW_R1, "template": "[INST] {{ .Prompt }} [/INST]"})
    client = ds.connect("ollama", host=httpserver.url_for(""), set_default=False)
    with pytest.raises(BudgetUnsupported, match="max_tokens"):
        client.chat(QUESTION, R1, think_budget=16)
    assert _bodies(httpserver, "/api/chat") == []


# --- the client-side templates ---------------------------------------------------------------

def test_templates_are_rebuilt_by_family():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"}, {"role": "user", "content": "2+2?"}]
    assert deepseek(msgs) == ("S<｜User｜>hi<｜Assistant｜>hello<｜end▁of▁sentence｜>"
                              "<｜User｜>2+2?<｜Assistant｜>")
    assert chatml(msgs[1:2]) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert render(SHOW_R1["template"], msgs) == deepseek(msgs)
    jinja = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
             "{% if add_generation_prompt %}<assistant>{% endif %}")
    assert render(jinja, msgs[1:2]) == "<user>hi<assistant>"
    with pytest.raises(BudgetUnsupported):
        render("{% for m in messages %}{{ m.__class__.__mro__ }}{% endfor %}", msgs)
    with pytest.raises(BudgetUnsupported, match="neither"):
        render("<start_of_turn>user", msgs)


# --- Ollama's API end to end through `dskit serve` --------------------------------------------

@pytest.fixture(scope="module")
def served(embedded: EmbeddedBackend) -> Iterator[Any]:
    server = ds.serve.start(port=0, backend=embedded)
    # Content may be batched for this long; reasoning must still go out one token per piece.
    server.engine.flush_interval = 30.0
    yield server
    server.stop()


def test_budget_end_to_end_through_dskit_serve(served: Any, embedded: EmbeddedBackend):
    client = ds.connect("ollama", host=served.url, set_default=False)
    reply = client.chat(QUESTION, QWEN, think=True, think_budget=10, max_tokens=120,
                        temperature=0)
    assert reply.budget_hit and reply.answer
    assert reply.thinking.endswith(WRAP_UP["en"]) and reply.stats.thinking_tokens == 10
    # The client counts streamed pieces: the server must send one token of reasoning per
    # piece, or the cut lets several tokens pass as one.
    cut = reply.thinking[: reply.thinking.rindex(WRAP_UP["en"])].strip()
    tokens = embedded.load(QWEN).llm.tokenize(cut.encode("utf-8"), add_bos=False)
    assert 0 < len(tokens) <= 10 + 2, cut  # re-tokenizing joined text may merge or split one


def test_serve_accepts_raw_like_ollama(served: Any):
    prompt = ("<|im_start|>user\nWhat is 2+3? Reply with the number only.<|im_end|>\n"
              "<|im_start|>assistant\n")
    r = httpx.post(f"{served.url}/api/generate", json={
        "model": QWEN, "prompt": prompt, "raw": True, "stream": False,
        "options": {"temperature": 0, "num_predict": 8}}, timeout=120)
    assert r.status_code == 200, r.text
    assert "5" in r.json()["response"] and r.json()["done"]
    # A raw prompt that is not a chat gets plain continuation: no template was added.
    r = httpx.post(f"{served.url}/api/generate", json={
        "model": QWEN, "prompt": "1, 2, 3, 4,", "raw": True, "stream": False,
        "options": {"temperature": 0, "num_predict": 6}}, timeout=120)
    assert r.json()["response"].lstrip().startswith("5")
    for extra in ({"system": "be brief"}, {"template": "{{ .Prompt }}"}, {"context": [1, 2]}):
        bad = httpx.post(f"{served.url}/api/generate", json={
            "model": QWEN, "prompt": "x", "raw": True, **extra}, timeout=30)
        assert bad.status_code == 400
        assert bad.json()["error"] == "raw mode does not support template, system, or context"
    thinking = httpx.post(f"{served.url}/api/generate", json={
        "model": QWEN, "prompt": "x", "raw": True, "think": True}, timeout=30)
    assert thinking.status_code == 400 and "does not support thinking" in thinking.text


# --- OpenAI-compatible servers: continue the final assistant message --------------------------

def _sse(*chunks: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def _delta(reasoning: str = "", content: str = "", finish: str | None = None
           ) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if reasoning:
        delta["reasoning_content"] = reasoning
    if content:
        delta["content"] = content
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _openai(httpserver: HTTPServer, owner: str, replies: list[str], **kwargs: Any) -> ds.Client:
    httpserver.expect_request("/v1/models").respond_with_json(
        {"data": [{"id": "deepseek-r1", "owned_by": owner}]})
    for body in replies:
        httpserver.expect_oneshot_request("/v1/chat/completions", method="POST") \
            .respond_with_data(body, content_type="text/event-stream")
    backend = OpenAIBackend(base_url=httpserver.url_for("/v1"), **kwargs)
    return ds.connect(backend, set_default=False)


def test_vllm_continues_the_final_assistant_message(httpserver: HTTPServer):
    phase1 = _sse(*[_delta(reasoning=f"r{i} ") for i in range(8)], _delta(content="late"))
    # vLLM's reasoning parser cannot see the `</think>` in the prompt: the answer may arrive
    # as reasoning; after the cut everything is the answer.
    phase2 = _sse(_delta(reasoning="The answer"), _delta(content=" is 42.", finish="stop"))
    client = _openai(httpserver, "vllm", [phase1, phase2])
    reply = client.chat(QUESTION, "deepseek-r1", think_budget=3, max_tokens=50)
    assert reply.thinking.startswith("r0 r1 r2") and "r3" not in reply.thinking
    assert reply.answer == "The answer is 42." and reply.budget_hit
    bodies = [req.get_json() for req, _ in httpserver.log
              if req.path == "/v1/chat/completions"]
    second = bodies[1]
    assert second["continue_final_message"] is True and second["add_generation_prompt"] is False
    assert second["messages"][-1] == {
        "role": "assistant",
        "content": f"<think>\nr0 r1 r2\n\n{WRAP_UP['en']}\n</think>\n\n"}
    assert second["max_tokens"] == 47


def test_deepseek_prefix_completion(httpserver: HTTPServer):
    httpserver.expect_oneshot_request("/v1/chat/completions", method="POST").respond_with_data(
        _sse(*[_delta(reasoning="x ") for i in range(5)]), content_type="text/event-stream")
    httpserver.expect_oneshot_request("/beta/chat/completions", method="POST") \
        .respond_with_data(_sse(_delta(content="42", finish="stop")),
                           content_type="text/event-stream")
    backend = OpenAIBackend(base_url=httpserver.url_for("/v1"), continuation="deepseek")
    reply = ds.connect(backend, set_default=False).chat(QUESTION, "deepseek-reasoner",
                                                        think_budget=2)
    assert reply.answer == "42" and reply.budget_hit
    last = next(req.get_json() for req, _ in httpserver.log
                if req.path == "/beta/chat/completions")["messages"][-1]
    assert last["prefix"] is True and last["role"] == "assistant"
    assert last["reasoning_content"] == f"x x\n\n{WRAP_UP['en']}"


def test_server_that_cannot_continue_gets_a_typed_error(httpserver: HTTPServer):
    client = _openai(httpserver, "library", [])
    with pytest.raises(BudgetUnsupported, match="max_tokens"):
        client.chat(QUESTION, "deepseek-r1", think_budget=16)
    assert not [r for r, _ in httpserver.log if r.path == "/v1/chat/completions"]


def test_a_template_that_rewrites_the_last_turn_is_explained(httpserver: HTTPServer):
    httpserver.expect_request("/v1/models").respond_with_json(
        {"data": [{"id": "deepseek-r1", "owned_by": "vllm"}]})
    httpserver.expect_oneshot_request("/v1/chat/completions", method="POST").respond_with_data(
        _sse(*[_delta(reasoning="x ") for _ in range(4)]), content_type="text/event-stream")
    httpserver.expect_oneshot_request("/v1/chat/completions", method="POST").respond_with_json(
        {"error": {"message": "continue_final_message is set but the final message does not "
                              "appear in the chat after applying the chat template!"}},
        status=400)
    client = ds.connect(OpenAIBackend(base_url=httpserver.url_for("/v1")), set_default=False)
    with pytest.raises(BudgetUnsupported, match="rewrites the final assistant message"):
        client.chat(QUESTION, "deepseek-r1", think_budget=2)


# --- how a budget's outcome is shown ----------------------------------------------------------

def test_a_zero_budget_reads_as_thinking_off_not_as_a_cut():
    from dskit.reasoning.plan import budget_outcome

    assert budget_outcome(0, True) == "thinking off (think_budget=0)"
    assert budget_outcome(24, True) == "reasoning cut at its budget"
    assert budget_outcome(24, False) == "reasoning within its budget of 24 tokens"
    assert budget_outcome(None, False) == ""
    off = ds.Reply(answer="9", model=QWEN, budget_hit=True, options={"think_budget": 0})
    assert off.budget_outcome == "thinking off (think_budget=0)"
    assert "thinking off (think_budget=0)" in off.footer() and "cut" not in off.footer()
    cut = ds.Reply(answer="9", model=QWEN, budget_hit=True, options={"think_budget": 8})
    assert "reasoning cut at its budget" in cut.footer()


def test_a_sweeps_description_says_thinking_off_at_budget_zero():
    import pandas as pd

    from dskit.evals.results import COLUMNS
    from dskit.evals.summary import describe, summary

    rows = [{c: None for c in COLUMNS} | {
        "model": QWEN, "prompt_id": f"p{i}", "prompt": f"p{i}", "sample": 0, "kind": "math",
        "answer": "1", "thinking": "", "expected": "1", "correct": True, "total_s": 1.0,
        "thinking_tokens": 0 if budget == 0 else 8, "answer_tokens": 1, "done_reason": "stop",
        "think_budget": budget, "budget_hit": True} for budget in (0, 8) for i in (1, 2)]
    text = " ".join(describe(summary(pd.DataFrame(rows))).split())
    zero, eight = text.split(f"{QWEN} (think_budget=")[1:3]  # one sentence a budget
    assert "thinking off" in zero and "hit its budget" not in zero, text
    assert "hit its budget in 2" in eight, text
