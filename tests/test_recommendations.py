"""DeepSeek-R1 usage recommendations: sampling defaults, system-prompt folding, no old reasoning."""

from __future__ import annotations

from dskit.backends.base import Options
from dskit.reasoning.plan import detect_traits
from dskit.recommendations import (
    FOLD_NOTE,
    apply_recommendations,
    fold_system_prompt,
    strip_reasoning,
)


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
