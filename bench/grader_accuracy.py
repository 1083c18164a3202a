"""How often dskit's graders agree with a careful human, on labelled answers.

    .venv/bin/python bench/grader_accuracy.py

Sets under tests/data/: `cup_answers.json` (50 answers to the cup puzzle, written while the
grader was designed), `cup_answers_heldout.json` (40 answers written blind, without seeing the
grader), `math_answers.json` (35 answers to word problems) and `text_answers.json` (48 short
answers: how often or how long, by value in English and Chinese, and the user's name asked
back, where "我是小明" claims the name instead of saying it). Prints accuracy, false ✓ (a
wrong answer marked right: the costly mistake in a tutorial) and false ✗, overall and per kind.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from dskit.evals.grading import grade, grade_cup

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def evaluate(path: Path, kind_of_set: str) -> None:
    answers = json.loads(path.read_text(encoding="utf-8"))["answers"]
    right, false_right, false_wrong = Counter(), Counter(), Counter()
    per_kind = Counter()
    for item in answers:
        got = grade_cup(item["answer"]) if "expected" not in item else \
            grade(item["answer"], item["expected"], kind_of_set, item.get("grader"))
        want, kind = item["correct"], item["kind"]
        per_kind[kind] += 1
        right[kind] += got == want
        false_right[kind] += got and not want
        false_wrong[kind] += want and not got
    n, ok = len(answers), sum(right.values())
    print(f"{path.name}: {ok}/{n} agree ({ok / n:.1%}); false ✓ {sum(false_right.values())}, "
          f"false ✗ {sum(false_wrong.values())}")
    for kind in sorted(per_kind):
        print(f"  {kind:<11} {right[kind]}/{per_kind[kind]}")


if __name__ == "__main__":
    for name, kind in (("cup_answers.json", "text"), ("cup_answers_heldout.json", "text"),
                       ("math_answers.json", "math"), ("text_answers.json", "text")):
        evaluate(DATA / name, kind)
