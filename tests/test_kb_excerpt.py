"""Excerpts: the part of a passage around the words a query matched, whole when it fits."""

from __future__ import annotations

from pathlib import Path

import pytest

from dskit.kb.excerpt import ELLIPSIS, columns, excerpt
from tests import kbfiles

FILLER_EN = ("Mix the flour and water first and let them rest for thirty minutes before the salt "
             "goes in. ") * 4
FILLER_ZH = "项目评审会改到周三上午十点，在三楼会议室，请各位准时参加并带上材料。" * 4


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("text", "query", "answer"), [
    (FILLER_EN + "A starter kept in the fridge only needs feeding once a week. " + FILLER_EN,
     "How often should a starter in the fridge be fed?", "once a week"),
    (FILLER_ZH + "本周五晚上六点团队聚餐，地点在公司附近的湘菜馆。" + FILLER_ZH,
     "团队聚餐是什么时候？", "本周五晚上六点团队聚餐"),
    (FILLER_ZH + "冲泡乌龙茶一般用九十五度以上的水，适合用紫砂壶。",
     "乌龙茶用多少度的水？", "九十五度以上的水"),
])
def test_the_excerpt_is_the_window_around_the_match(tmp_path: Path, text: str, query: str,
                                                    answer: str) -> None:
    passage = read(kbfiles.write(tmp_path / "note.md", text))
    shown = excerpt(passage, query, width=120)
    assert answer in shown, shown
    assert shown.startswith(ELLIPSIS) and answer not in passage[:120]
    assert sum(columns(ch) for ch in shown) <= 120


def test_a_passage_that_fits_is_shown_whole_and_one_without_a_match_from_its_start() -> None:
    assert excerpt("龙井是绿茶。\n\n  产自杭州。", "龙井") == "龙井是绿茶。 产自杭州。"
    shown = excerpt(FILLER_EN, "zebra", width=80)
    assert shown.startswith("Mix the flour") and shown.endswith(ELLIPSIS)


def test_wide_characters_take_two_columns_and_latin_words_match_whole() -> None:
    assert columns("龙") == 2 and columns("a") == 1 and columns("，") == 2
    text = "ovens " * 40 + "Bake in a covered Dutch oven at 250 °C. " + "ovens " * 40
    shown = excerpt(text, "oven", width=60)
    assert "Dutch oven at 250" in shown  # "ovens" is not the word "oven"
