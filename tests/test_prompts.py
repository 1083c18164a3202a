"""Prompt sets: the cup puzzle, the maths set, and what `load()` accepts."""

from __future__ import annotations

import contextlib
import json
from importlib import resources

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dskit.errors import ConfigurationError
from dskit.evals import grading as G
from dskit.evals import prompts as P


def test_cup_puzzle_in_both_languages():
    zh, en = P.cup_puzzle("zh"), P.cup_puzzle(lang="en")
    assert "杯" in zh.prompt and "床" in zh.prompt and zh.expected == "在床上"
    assert "cup" in en.prompt and "bed" in en.prompt and en.expected == "on the bed"
    assert zh.kind == en.kind == "text" and zh.id == "cup-zh" and en.id == "cup-en"
    assert zh.grade("球在床上") is True and en.grade("Inside the cup, in the other room") is False
    with pytest.raises(ConfigurationError):
        P.cup_puzzle("fr")


def test_maths_set_ships_as_package_data():
    df = P.maths()
    assert 16 <= len(df) <= 20 and list(df.columns) == P.COLUMNS
    assert (df["kind"] == "math").all() and df["prompt_id"].is_unique
    assert all(G.parse_number(e) is not None for e in df["expected"])
    assert df["prompt"].str.contains(r"[\u4e00-\u9fff]").sum() >= 5  # Chinese problems too
    raw = json.loads(resources.files("dskit").joinpath("data/maths.json").read_text("utf-8"))
    assert "original" in raw["source"].lower() and "MIT" in raw["licence"]
    assert "gsm8k" not in raw["source"].lower().replace("not taken from gsm8k", "")


def test_load_builtin_names():
    assert P.load("cup")["prompt_id"].tolist() == ["cup-zh"]
    assert P.load("cup-en")["expected"].tolist() == ["on the bed"]
    assert len(P.load("maths")) == len(P.maths())
    with pytest.raises(ConfigurationError, match="unknown prompt set"):
        P.load("mathz")


def test_load_list_of_strings_has_stable_ids():
    a = P.load(["Why is the sky blue?", "Name a colour."])
    b = P.load(["Name a colour.", "Why is the sky blue?"])
    assert list(a.columns) == P.COLUMNS
    assert a["kind"].tolist() == ["text", "text"] and a["expected"].isna().all()
    assert set(a["prompt_id"]) == set(b["prompt_id"])
    with pytest.raises(ConfigurationError, match="empty"):
        P.load(["  "])
    with pytest.raises(ConfigurationError, match="duplicate"):
        P.load(["a", "a"])


def test_load_dataframe_infers_kind():
    df = P.load(pd.DataFrame({"prompt": ["2+2?", "Sky colour?", "Say hi"],
                              "expected": [4, "blue", None]}))
    assert df["kind"].tolist() == ["math", "text", "text"]
    assert df["expected"].tolist()[:2] == ["4", "blue"] and df["expected"].tolist()[2] is None
    given = P.load(pd.DataFrame({"prompt": ["x"], "expected": ["7"], "kind": ["text"],
                                 "prompt_id": ["mine"]}))
    assert given.loc[0, "kind"] == "text" and given.loc[0, "prompt_id"] == "mine"
    with pytest.raises(ConfigurationError, match="`prompt` column"):
        P.load(pd.DataFrame({"question": ["x"]}))
    with pytest.raises(ConfigurationError):
        P.load(42)


# --- hostile benchmark files: a typed error naming the file, never a Python internals error --

HOSTILE_FILES = {
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "deep.jsonl": '{"question": ' + "[" * 5000 + "]" * 5000 + ', "answer": "1"}\n',
    "latin1.jsonl": '{"question": "café crème", "answer": "1"}\n'.encode("latin-1"),
    "torn.csv": 'question,answer\n"多少个苹果,7\n',
    "scalar.json": "5",
    "strings.json": '["a", "b"]',
    "binary.parquet": b"PAR1\x00\x01garbage",
    "huge-int.jsonl": '{"question": "x", "answer": ' + "9" * 5000 + "}\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_a_hostile_benchmark_file_is_a_typed_error_naming_it(tmp_path, name):
    path = tmp_path / name
    data = HOSTILE_FILES[name]
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    with pytest.raises(ConfigurationError) as caught:
        P.load(path)
    assert str(path) in str(caught.value) or name in str(caught.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from([".jsonl", ".json", ".csv"]),
       body=st.one_of(st.binary(max_size=300),
                      st.text(alphabet='{}[]",:\n\\0123456789abcé苹果 ', max_size=300)))
def test_any_bytes_in_a_benchmark_file_load_or_fail_typed(tmp_path, suffix, body):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    # A typed error that says which file and why is fine; anything else fails the test.
    with contextlib.suppress(ConfigurationError):
        P.load(path)
