"""Free reasoning leaves the answer room in `max_tokens` (`reasoning.plan.answer_room`): on the
real stand-ins, a stand-in asked to reason first and an R1-named GGUF that never closes its
reasoning both reach an answer phase instead of ending inside their reasoning."""

from __future__ import annotations

from typing import Any

import dskit as ds
from dskit.reasoning.plan import ANSWER_ROOM, answer_room
from dskit.weights import files as model_files

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"


def test_the_room_is_a_quarter_capped_and_none_for_tiny_limits():
    assert answer_room(600) == 150 and answer_room(64) == 16
    assert answer_room(100_000) == ANSWER_ROOM
    assert answer_room(12) == 0  # too few to share: the token-limit note says why


def test_a_stand_in_reasoning_first_always_gets_to_answer(embedded_client: Any):
    reply = embedded_client.chat("请非常详细地解释蒸汽机是怎样工作的，每一步都要写清楚。", QWEN,
                                 think=True, max_tokens=96, temperature=0, seed=1)
    room = answer_room(96)
    assert reply.reasoned and not reply.unfinished_reasoning, reply.text()
    assert not reply.budget_hit  # no budget was asked for: the room is not one
    assert any(f"leave {room} of max_tokens=96" in n for n in reply.notes), reply.notes
    assert "时间到了" in reply.thinking  # closed with the wrap-up line, in the question's language
    assert reply.stats.eval_tokens is not None and reply.stats.eval_tokens <= 96
    assert reply.stats.answer_tokens  # the answer phase ran


def test_an_r1_gguf_that_never_closes_its_reasoning_gets_to_answer(embedded_client: Any,
                                                                   embedded: Any):
    ds.register_gguf("deepseek-r1:room-test", model_files.model_path(SMALL))
    try:
        reply = embedded_client.chat("Why is the sky blue?", "deepseek-r1:room-test",
                                     max_tokens=80, seed=3)
        assert reply.reasoned and not reply.unfinished_reasoning, reply.text()
        assert "Time is up" in reply.thinking and not reply.budget_hit
        assert any("for the answer" in n for n in reply.notes), reply.notes
        assert reply.stats.eval_tokens is not None and reply.stats.eval_tokens <= 80
    finally:
        model_files._registered.pop("deepseek-r1:room-test", None)
        embedded.unload("deepseek-r1:room-test")
