"""`Reply`: status (never blaming the model for a user's Stop), footer, verdict, plain text."""

from __future__ import annotations

from dskit.reply import Reply, Stats


def test_a_stop_is_said_to_be_the_users():
    during = Reply(thinking="Let me think", reasoned=True, done_reason="stopped")
    assert during.status == "stopped by you while it was still reasoning: no answer yet"
    assert "model returned" not in during.text()
    assert Reply(done_reason="stopped").status == "stopped by you before any answer"
    assert Reply(answer="Part of it", done_reason="stopped").status == "stopped by you"


def test_empty_and_truncated_replies_say_so():
    assert Reply().status == "no answer: the model returned an empty answer"
    assert Reply(answer="x", done_reason="length").status == "truncated: hit the token limit"


def test_footer_names_stand_ins_and_memory():
    reply = Reply(answer="x", model="smollm2:135m", backend="embedded",
                  stats=Stats(eval_tokens=10, eval_time=0.5, memory=190_000_000))
    footer = reply.footer()
    assert footer.startswith("embedded:smollm2:135m (a stand-in, not DeepSeek) · 20.0 tok/s")
    assert "memory 0.19 GB" in footer
    assert "stand-in" not in Reply(model="deepseek-r1:7b", backend="ollama").footer()
    stopped = Reply(model="m", backend="b", done_reason="stopped")
    assert stopped.footer(with_status=True).startswith("stopped by you")
