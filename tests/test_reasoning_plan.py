"""The reasoning plan: model traits from names and server details, and one plan per reply."""

from __future__ import annotations

import pytest

from dskit.reasoning.plan import (
    NO_REASONING_NOTE,
    THINK_PREFIX,
    ReasoningSupport,
    detect_traits,
    plan_reasoning,
)

EMBEDDED = ReasoningSupport(force_prefix=True, two_phase=True)
OLLAMA = ReasoningSupport(think_switch=True)
OLD_OLLAMA = ReasoningSupport()  # before 0.9: no think switch; OpenAI-compatible servers too


def test_r1_by_name():
    t = detect_traits("deepseek-r1:7b")
    assert t.r1 and t.reasoning and t.force_think and not t.system_prompt_ok


def test_r1_0528_by_name_and_by_details():
    assert detect_traits("deepseek-r1:8b-0528-qwen3-q4_K_M").system_prompt_ok
    # Ollama's deepseek-r1:8b now points at the Qwen3-8B R1-0528 distill: only details tell.
    details = {"model_info": {"general.architecture": "qwen3",
                              "general.basename": "DeepSeek-R1-0528-Qwen3"},
               "details": {"family": "qwen3"}, "capabilities": ["completion", "thinking"]}
    t = detect_traits("deepseek-r1:8b", details)
    assert t.r1 and t.system_prompt_ok and not t.force_think


def test_r1_recognised_from_details_under_another_name():
    details = {"model_info": {"general.name": "DeepSeek R1 Distill Qwen 7B"},
               "details": {"family": "qwen2"}}
    t = detect_traits("my-favourite-model:latest", details)
    assert t.r1 and not t.system_prompt_ok


def test_other_models():
    assert detect_traits("qwen2.5-coder:0.5b") == detect_traits("llama3:8b")
    assert not detect_traits("qwen2.5-coder:0.5b").r1
    assert detect_traits("qwq", {"capabilities": ["thinking"]}).reasoning


def test_r1_reasons_by_default_everywhere():
    r1 = detect_traits("deepseek-r1:7b")
    embedded = plan_reasoning(r1, None, EMBEDDED)
    assert embedded.think is True and embedded.prefix == THINK_PREFIX and embedded.starts_inside
    assert embedded.send_think is None and not embedded.two_phase and not embedded.notes
    ollama = plan_reasoning(r1, None, OLLAMA)
    assert ollama.think is True and ollama.send_think is True and ollama.prefix == ""
    old = plan_reasoning(r1, None, OLD_OLLAMA)
    assert old.send_think is None and old.starts_inside  # tags inline, split by the chat layer


def test_r1_switched_off():
    plan = plan_reasoning(detect_traits("deepseek-r1:7b"), False, EMBEDDED)
    assert plan.think is False and plan.prefix == "" and not plan.starts_inside
    assert plan_reasoning(detect_traits("deepseek-r1:7b"), False, OLLAMA).send_think is False


def test_r1_0528_is_not_forced():
    plan = plan_reasoning(detect_traits("deepseek-r1:8b-0528-qwen3"), None, EMBEDDED)
    assert plan.think is True and plan.prefix == ""


@pytest.mark.parametrize("think", [None, False])
def test_plain_model_does_not_reason_unless_asked(think):
    plan = plan_reasoning(detect_traits("qwen2.5-coder:0.5b"), think, EMBEDDED)
    assert plan.think is think and not plan.two_phase and plan.prefix == ""
    assert not plan.starts_inside and not plan.notes


def test_plain_model_asked_to_reason():
    plain = detect_traits("qwen2.5-coder:0.5b")
    assert plan_reasoning(plain, True, EMBEDDED).two_phase
    # A server with a think switch decides (dskit serve prompts a stand-in; Ollama refuses and
    # the backend answers without it, saying so on the reply).
    on_ollama = plan_reasoning(plain, True, OLLAMA)
    assert on_ollama.send_think is True and not on_ollama.two_phase and not on_ollama.notes
    # Nothing can make it reason on an OpenAI-compatible server: the reply says so.
    elsewhere = plan_reasoning(plain, True, OLD_OLLAMA)
    assert elsewhere.send_think is None and elsewhere.notes == (NO_REASONING_NOTE,)


def test_thinking_capability_counts_as_reasoning():
    qwq = detect_traits("qwq", {"capabilities": ["completion", "thinking"]})
    plan = plan_reasoning(qwq, None, OLLAMA)
    assert plan.think is True and plan.send_think is True and not plan.starts_inside
