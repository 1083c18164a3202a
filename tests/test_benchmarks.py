"""Benchmark files in the common layouts (files of our own writing, no download)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

import dskit as ds
from dskit.errors import ConfigurationError

#: GSM8K's layout: a worked solution ending in "#### answer".
GSM8K = [
    {"question": "Lena has 3 boxes of 12 pencils and gives away 5. How many are left?",
     "answer": "3 boxes hold 3 * 12 = <<3*12=36>>36 pencils.\n36 - 5 = <<36-5=31>>31\n#### 31"},
    {"question": "A farm sells 1,200 eggs a day for 30 days. How many eggs in total?",
     "answer": "1200 * 30 = 36000\n#### 36,000"},
    {"question": "小红有 8 本书，又买了 7 本。她一共有几本书？", "answer": "8 + 7 = 15\n#### 15"},
]
#: MATH-500's layout: problem, worked solution, final answer (LaTeX), an id.
MATH500 = [
    {"problem": "What is $\\frac{1}{2} + \\frac{1}{3}$?",
     "solution": "The sum is $\\frac{3}{6} + \\frac{2}{6} = \\boxed{\\frac{5}{6}}$.",
     "answer": "\\frac{5}{6}", "subject": "Prealgebra", "level": 1,
     "unique_id": "test/prealgebra/1.json"},
    {"problem": "Compute $2^{10}$.", "solution": "$2^{10} = \\boxed{1024}$.",
     "answer": "1024", "subject": "Algebra", "level": 1, "unique_id": "test/algebra/2.json"},
]
#: MATH's original layout: only a solution with a box.
MATH = [{"problem": "What is $7 \\times 8$?", "solution": "We get $\\boxed{56}$.",
         "level": "Level 1", "type": "Prealgebra"}]
#: AIME-style: an id, the problem and an integer answer (column names capitalised).
AIME = [{"ID": "2024-I-1", "Problem": "Find the remainder when 2024 is divided by 7.",
         "Answer": 1},
        {"ID": "2024-I-2", "Problem": "How many positive divisors does 36 have?",
         "Answer": 9}]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write `rows` in the format the suffix names."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                        encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps({"data": rows}, ensure_ascii=False), encoding="utf-8")
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_gsm8k_in_every_format(tmp_path: Path, suffix: str):
    df = ds.prompts.load(write(tmp_path / f"gsm8k{suffix}", GSM8K))
    assert list(df["expected"]) == ["31", "36000", "15"]
    assert (df["kind"] == "math").all() and df["prompt"][2].startswith("小红")
    assert df["prompt_id"].is_unique


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_math500_uses_its_answers_and_ids(tmp_path: Path, suffix: str):
    df = ds.prompts.load(write(tmp_path / f"math500{suffix}", MATH500))
    assert list(df["expected"]) == ["\\frac{5}{6}", "1024"]
    assert list(df["prompt_id"]) == ["test/prealgebra/1.json", "test/algebra/2.json"]


def test_math_solutions_give_their_boxed_answer(tmp_path: Path):
    df = ds.prompts.load(write(tmp_path / "math.jsonl", MATH))
    assert list(df["expected"]) == ["56"] and df["kind"][0] == "math"


def test_aime_with_capitalised_columns(tmp_path: Path):
    df = ds.prompts.load(write(tmp_path / "aime.csv", AIME))
    assert list(df["expected"]) == ["1", "9"] and list(df["prompt_id"]) == ["2024-I-1",
                                                                            "2024-I-2"]


def test_each_layout_is_graded_by_value(tmp_path: Path):
    gsm = ds.prompts.load(write(tmp_path / "g.jsonl", GSM8K))
    assert ds.grading.grade("So she has \\boxed{31} pencils.", gsm["expected"][0], "math")
    assert ds.grading.grade("The total is 36,000 eggs.", gsm["expected"][1], "math")
    math500 = ds.prompts.load(write(tmp_path / "m.jsonl", MATH500))
    assert ds.grading.grade("\\boxed{5/6}", math500["expected"][0], "math")
    assert not ds.grading.grade("\\boxed{1/6}", math500["expected"][0], "math")


def test_a_datasets_object_is_read_without_importing_datasets():
    class Dataset:  # the two members dskit uses, as `datasets.Dataset` has them
        column_names: ClassVar[list[str]] = ["question", "answer"]

        def to_pandas(self) -> pd.DataFrame:
            return pd.DataFrame(GSM8K)

    df = ds.prompts.load(Dataset())
    assert list(df["expected"]) == ["31", "36000", "15"]

    class DatasetDict:
        column_names: ClassVar[dict[str, list[str]]] = {"train": ["question", "answer"],
                                                        "test": ["question", "answer"]}

    with pytest.raises(ConfigurationError, match="several splits"):
        ds.prompts.load(DatasetDict())


def test_a_sample_of_n_is_reproducible(tmp_path: Path):
    rows = [{"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"} for i in range(50)]
    path = write(tmp_path / "many.jsonl", rows)
    a, b = ds.prompts.load(path, n=5, seed=1), ds.prompts.load(path, n=5, seed=1)
    assert a.equals(b) and len(a) == 5
    assert not a.equals(ds.prompts.load(path, n=5, seed=2))
    assert len(ds.prompts.load(path, n=500)) == 50
    with pytest.raises(ConfigurationError, match="n=0"):
        ds.prompts.load(path, n=0)


def test_an_unknown_layout_names_the_columns(tmp_path: Path):
    path = write(tmp_path / "odd.jsonl", [{"text": "hi", "label": 1}])
    with pytest.raises(ConfigurationError) as err:
        ds.prompts.load(path)
    message = str(err.value)
    assert "['text', 'label']" in message and "GSM8K" in message and "#### N" in message


def test_missing_and_broken_files_are_clear(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="no such prompt file"):
        ds.prompts.load(tmp_path / "absent.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not JSON Lines"):
        ds.prompts.load(bad)
    boxless = write(tmp_path / "boxless.jsonl", [{"problem": "p", "solution": "no box"}])
    with pytest.raises(ConfigurationError, match="boxed"):
        ds.prompts.load(boxless)


def test_dskit_own_file_and_cli_prompts(tmp_path: Path):
    path = write(tmp_path / "own.jsonl", [{"prompt": "2+2?", "expected": "4"}])
    df = ds.prompts.load(path)
    assert df["expected"][0] == "4" and df["kind"][0] == "math"
