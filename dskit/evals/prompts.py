"""Prompt sets for comparisons: the cup-and-ball puzzle and a small maths set.

`load(spec, n=None, seed=0)` turns whatever a user passes (a list of strings, a DataFrame with
`prompt` and optional `expected`, a built-in name: "cup", "cup-en", "maths", or a benchmark file
or `datasets` object: GSM8K, MATH, AIME, see `dskit.evals.benchmarks`) into one DataFrame with the
columns `prompt_id`, `prompt`, `expected`, `kind` ("math" or "text") and `grader`. Whether an
answer is right is decided in `dskit.evals.grading`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from . import benchmarks
from .grading import grade, is_missing, parse_number

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["prompt_id", "prompt", "expected", "kind", "grader"]
BUILTIN = ("cup", "cup-zh", "cup-en", "maths")


@dataclass(frozen=True)
class Prompt:
    """One prompt with its expected answer and how to grade it."""

    id: str
    prompt: str
    expected: str | None = None
    kind: str = "text"  # "math" or "text"
    grader: str | None = None  # a name in dskit.evals.grading.GRADERS; None: by kind

    def grade(self, answer: str, thinking: str = "") -> bool | None:
        """Whether `answer` is correct (None when there is no expected answer)."""
        return grade(answer, self.expected, self.kind, self.grader, thinking=thinking)

    def as_row(self) -> dict[str, Any]:
        return {"prompt_id": self.id, "prompt": self.prompt, "expected": self.expected,
                "kind": self.kind, "grader": self.grader}


# --- the cup-and-ball puzzle --------------------------------------------------------------

_CUP = {
    "zh": ("我把一个球放进杯子里，然后把杯子倒扣在床上，再把杯子拿到另一个房间。"
           "请问球现在在哪里？", "在床上"),
    "en": ("I put a ball in a cup, turned the cup upside down on the bed, then picked up the cup "
           "and carried it into another room. Where is the ball now?", "on the bed"),
}


def cup_puzzle(lang: str = "zh") -> Prompt:
    """The classic puzzle: the ball stays on the bed when the upturned cup is carried away."""
    if lang not in _CUP:
        raise ConfigurationError(f"cup_puzzle(lang=...) takes 'zh' or 'en', not {lang!r}")
    text, expected = _CUP[lang]
    return Prompt(id=f"cup-{lang}", prompt=text, expected=expected, kind="text", grader="cup")


# --- the user's name, asked back ----------------------------------------------------------

_NAME = {
    "zh": ("我叫小明，请记住我的名字。", "我叫什么名字？", "小明"),
    "en": ("My name is Xiaoming. Please remember my name.", "What is my name?", "Xiaoming"),
}


def name_recall(lang: str = "zh") -> tuple[str, Prompt]:
    """A two-turn memory check: the introduction to send first, then the question, graded by
    the "name" grader ("你叫小明" is right; "我是小明" answers as if the model were the user)."""
    if lang not in _NAME:
        raise ConfigurationError(f"name_recall(lang=...) takes 'zh' or 'en', not {lang!r}")
    intro, question, name = _NAME[lang]
    return intro, Prompt(id=f"name-{lang}", prompt=question, expected=name, kind="text",
                         grader="name")


#: Questions with known answers that the chat widget offers and `dskit chat` grades by itself.
EXAMPLES: tuple[Prompt, ...] = (
    cup_puzzle("zh"),
    cup_puzzle("en"),
    Prompt(id="apples-zh", prompt="小明有 5 个苹果，吃了 2 个，又买了 4 个。他现在有几个苹果？",
           expected="7", kind="math"),
    Prompt(id="pens-en", prompt="A shop sells pens at 3 yuan each. How much do 14 pens cost?",
           expected="42", kind="math"),
)


# A question that computes: an expression ("12 × 7", "\frac{1}{2}"), or a word problem with
# at least two numbers ("pens at 3 yuan … 14 pens", "5 个苹果，吃了 2 个"); "In which year did
# Apollo 11 land?" or "冲泡龙井的水温是多少度？" ask for a fact, not a computation.
_EXPRESSION = re.compile(r"\d\s*[+×*÷^=]\s*[\d(]|\d\s+[-/]\s+\d|\\(?:frac|sqrt|boxed)|"
                         r"[=＝]\s*[?？]")  # "2026-10" and "3/4" alone are a date, a value
_QUANTITY = re.compile(r"\d+(?:[.,]\d+)?|[零一二两三四五六七八九十百千万]+(?=\s*(?:个|只|元|块|支|"
                       r"本|人|次|天|岁|米|分|倍|辆|条|张|斤|盒|箱|瓶|袋|页|小时))")


def is_maths_problem(text: str) -> bool:
    """Whether a question asks for a computation (an expression, or a word problem with two
    numbers or more): what DeepSeek's published maths scores (MATH-500) are about."""
    return bool(_EXPRESSION.search(text)) or len(_QUANTITY.findall(text)) >= 2


def known_question(text: str) -> Prompt | None:
    """The example question `text` is (ignoring surrounding spaces), or None."""
    text = text.strip()
    return next((e for e in EXAMPLES if e.prompt == text), None)


# --- prompt sets ---------------------------------------------------------------------------


def maths() -> pd.DataFrame:
    """The built-in maths set: 20 original word problems (English and Chinese), MIT."""
    import pandas as pd

    raw = resources.files("dskit").joinpath("data/maths.json").read_text(encoding="utf-8")
    rows = [Prompt(id=p["id"], prompt=p["prompt"], expected=str(p["expected"]), kind="math",
                   grader=None).as_row() for p in json.loads(raw)["problems"]]
    return pd.DataFrame(rows, columns=COLUMNS)


def _prompt_id(text: str) -> str:
    return "p-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def _looks_numeric(value: Any) -> bool:
    return not is_missing(value) and parse_number(value) is not None


def load(spec: Any, n: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Prompts as a DataFrame with `prompt_id`, `prompt`, `expected`, `kind`, `grader`.

    `spec`: a built-in name ("cup" = Chinese cup puzzle, "cup-en", "maths"), a `Prompt`, a list
    of strings or `Prompt`s, a DataFrame with `prompt` and optional `expected`, `kind`
    ("math"/"text"; by default "math" when `expected` is a number), `grader`, `prompt_id`, or a
    benchmark in a common layout (GSM8K, MATH / MATH-500, AIME) as a `.jsonl`, `.json`, `.csv`
    or `.parquet` file, a DataFrame or a `datasets.Dataset` (`dskit.evals.benchmarks`).
    `n` takes a random sample of that many prompts (the same for the same `seed`), in their
    order in the set. User prompts get an id from a hash of their text, so a resumed run finds
    them again.
    """
    df = _load(spec)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigurationError(f"n={n!r}: give a whole number of prompts >= 1")
        if n < len(df):
            df = df.sample(n=n, random_state=seed).sort_index().reset_index(drop=True)
    return df


def _load(spec: Any) -> pd.DataFrame:
    import pandas as pd

    if benchmarks.is_file_spec(spec):
        spec = benchmarks.recognise(benchmarks.read_file(spec), str(spec))
    elif benchmarks.is_dataset(spec):
        spec = benchmarks.recognise(benchmarks.from_dataset(spec), "the dataset")
    if isinstance(spec, str):
        name = spec.strip().lower()
        if name in ("cup", "cup-zh"):
            return pd.DataFrame([cup_puzzle("zh").as_row()], columns=COLUMNS)
        if name == "cup-en":
            return pd.DataFrame([cup_puzzle("en").as_row()], columns=COLUMNS)
        if name == "maths":
            return maths()
        raise ConfigurationError(
            f"unknown prompt set {spec!r}: use one of {', '.join(BUILTIN)}, a benchmark file "
            f"({', '.join(benchmarks.SUFFIXES)}), or a list of prompt strings "
            "(e.g. [\"Why is the sky blue?\"])"
        )
    if isinstance(spec, Prompt):
        spec = [spec]
    if isinstance(spec, pd.DataFrame):
        df = benchmarks.recognise(spec, "the DataFrame").copy().reset_index(drop=True)
    elif isinstance(spec, (list, tuple)):
        rows: list[dict[str, Any]] = []
        for item in spec:
            if isinstance(item, Prompt):
                rows.append(item.as_row())
            elif isinstance(item, str):
                rows.append({"prompt": item})
            else:
                raise ConfigurationError(
                    f"prompts must be strings or ds.prompts.Prompt, got {type(item).__name__}")
        df = pd.DataFrame(rows)
    else:
        raise ConfigurationError(
            "prompts: pass a list of strings, a DataFrame with a `prompt` column, "
            f"or one of {', '.join(BUILTIN)}; got {type(spec).__name__}")
    if df.empty:
        raise ConfigurationError("no prompts given")
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df.astype({"prompt_id": object, "expected": object, "kind": object, "grader": object})
    for i, row in df.iterrows():
        text = row["prompt"]
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError(f"prompt {i} is empty: every prompt needs some text")
        if is_missing(row["prompt_id"]):
            df.at[i, "prompt_id"] = _prompt_id(text)
        if is_missing(row["expected"]):
            df.at[i, "expected"] = None
        else:
            df.at[i, "expected"] = str(row["expected"])
        if is_missing(row["kind"]):
            df.at[i, "kind"] = "math" if _looks_numeric(row["expected"]) else "text"
        elif row["kind"] not in ("math", "text"):
            raise ConfigurationError(f"kind must be 'math' or 'text', not {row['kind']!r}")
        if is_missing(row["grader"]):
            df.at[i, "grader"] = None
    dup = df["prompt_id"][df["prompt_id"].duplicated()]
    if not dup.empty:
        raise ConfigurationError(f"duplicate prompts (or prompt_ids): {sorted(set(dup))}")
    return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
