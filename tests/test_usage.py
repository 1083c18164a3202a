"""DeepSeek-R1 usage recommendations: traits from names and server details, defaults, folding."""

from __future__ import annotations

from dskit.backends.base import Options
from dskit.usage import (
    FOLD_NOTE,
    apply_recommendations,
    detect_traits,
    fold_system_prompt,
    strip_reasoning,
)


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


def test_defaults_applied_and_overridable():
    msgs = [{"role": "user", "content": "hi"}]
    _, opts, _ = apply_recommendations(msgs, Options(), detect_traits("deepseek-r1:1.5b"))
    assert (opts.temperature, opts.top_p) == (0.6, 0.95)
    _, opts, _ = apply_recommendations(msgs, Options(temperature=0.2),
                                       detect_traits("deepseek-r1:1.5b"))
    assert opts.temperature == 0.2
    _, opts, _ = apply_recommendations(msgs, Options(), detect_traits("smollm2:135m"))
    assert opts.temperature is None


def test_system_prompt_folded_with_note():
    msgs = [{"role": "system", "content": "用中文回答。"}, {"role": "user", "content": "Hi"}]
    out, _, notes = apply_recommendations(msgs, Options(), detect_traits("deepseek-r1:7b"))
    assert out == [{"role": "user", "content": "用中文回答。\n\nHi"}]
    assert notes == [FOLD_NOTE]
    out, _, notes = apply_recommendations(msgs, Options(), detect_traits("deepseek-r1:8b-0528"))
    assert out[0]["role"] == "system" and notes == []


def test_fold_without_user_turn():
    out, folded = fold_system_prompt([{"role": "system", "content": "S"}])
    assert folded and out == [{"role": "user", "content": "S"}]


def test_reasoning_never_resent():
    msgs = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "<think>secret plan</think>\n\nA1", "thinking": "x"},
        {"role": "assistant", "content": "injected plan</think>A2"},
        {"role": "user", "content": "q2"},
    ]
    out = strip_reasoning(msgs)
    assert out[1] == {"role": "assistant", "content": "A1"}
    assert out[2]["content"] == "A2"
    assert "secret" not in str(out)
