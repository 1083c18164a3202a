"""Benchmark files people have on disk or from Hugging Face `datasets`, as graded prompts.

Recognised layouts (column names in any case), each graded by value as a maths answer:

| layout | columns | expected answer |
|---|---|---|
| GSM8K | `question`, `answer` ending in `#### 42` | the number after `####` |
| MATH, MATH-500 | `problem` and `answer` | `answer` (LaTeX allowed: `\\frac{1}{2}`) |
| MATH (solutions only) | `problem`, `solution` holding `\\boxed{…}` | the last box of `solution` |
| AIME-style | `problem` or `question`, an integer `answer` | `answer` |
| dskit's own | `prompt` (and `expected`, `kind`, `grader`) | `expected` |

Files: `.jsonl`, `.json` (a list of records, or an object holding one), `.csv`, `.parquet`
(needs pyarrow). A `datasets.Dataset` is read through its `to_pandas()`, without importing
`datasets` (nothing is downloaded). An id column (`id`, `unique_id`, `problem_id`) becomes the
prompt id, so a resumed comparison finds its rows again.
"""

from __future__ import annotations

import json
import os
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..reasoning.think import extract_boxed

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_IDS = ("id", "unique_id", "problem_id", "prompt_id")
EXPECTED = ("`question` + `answer` ending in '#### N' (GSM8K); `problem` + `answer`, or "
            "`problem` + `solution` with \\boxed{} (MATH, MATH-500); `problem` or `question` + "
            "an integer `answer` (AIME); a `prompt` column (+ `expected`) (dskit)")


def is_file_spec(spec: Any) -> bool:
    """Whether `spec` names a file (a path object, or a string with a known suffix)."""
    if isinstance(spec, os.PathLike):
        return True
    return isinstance(spec, str) and spec.strip().lower().endswith(SUFFIXES)


def is_dataset(spec: Any) -> bool:
    """Whether `spec` looks like a Hugging Face `datasets` object (duck-typed)."""
    return hasattr(spec, "column_names") and (hasattr(spec, "to_pandas")
                                              or isinstance(spec.column_names, dict))


def read_file(spec: str | os.PathLike[str]) -> pd.DataFrame:
    """The rows of a benchmark file, as they are; a file that cannot be read as its suffix
    says (bad encoding, cut off, nested too deeply, not a table) is a `ConfigurationError`
    naming it."""
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"no such prompt file: {path}")
    try:
        return _read(path)
    except ConfigurationError:
        raise
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path} is not UTF-8 text (byte {exc.start}): save it as "
                                 "UTF-8") from None
    except RecursionError:
        raise ConfigurationError(f"{path} nests too deeply to read: a benchmark file is a list "
                                 "of flat records") from None
    except (ValueError, TypeError, OSError, ImportError) as exc:
        # pandas' ParserError (an unclosed quote), pyarrow's errors, JSON of the wrong shape
        raise ConfigurationError(f"{path} cannot be read as a {path.suffix} file "
                                 f"({type(exc).__name__}: {str(exc)[:200]}): check that the "
                                 "file is complete and in that format") from None


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            return pd.DataFrame([json.loads(line) for line in lines if line.strip()])
        except ValueError as exc:
            raise ConfigurationError(f"{path} is not JSON Lines: {exc}") from None
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigurationError(f"{path} is not JSON: {exc}") from None
        if isinstance(data, dict):  # {"problems": [...]}, {"data": [...]}, or columns
            lists = [v for v in data.values() if isinstance(v, list) and v
                     and all(isinstance(r, dict) for r in v)]
            data = lists[0] if len(lists) == 1 else data
        return pd.DataFrame(data)
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if suffix == ".parquet":
        if find_spec("pyarrow") is None:
            raise ConfigurationError(f"reading {path.name} needs pyarrow: `pip install pyarrow` "
                                     "(or `pip install 'dskit[parquet]'`), or save it as JSONL")
        return pd.read_parquet(path)
    raise ConfigurationError(f"{path}: use a {', '.join(SUFFIXES)} file")


def from_dataset(data: Any) -> pd.DataFrame:
    """The rows of a `datasets.Dataset` (a `DatasetDict` must be given one split)."""
    if isinstance(data.column_names, dict):
        splits = ", ".join(repr(s) for s in data.column_names)
        raise ConfigurationError(f"this holds several splits ({splits}): pass one, e.g. "
                                 f"data[{next(iter(data.column_names))!r}]")
    return data.to_pandas()


def recognise(df: pd.DataFrame, source: str = "the data") -> pd.DataFrame:
    """Rows in dskit's prompt layout (`prompt_id`, `prompt`, `expected`, `kind`) from any of
    the layouts above; an unknown layout names the columns found and the ones expected."""
    import pandas as pd

    cols = {str(c).strip().lower(): c for c in df.columns}
    if "prompt" in cols:
        return df.rename(columns={v: k for k, v in cols.items()})
    text_col = next((cols[c] for c in ("question", "problem") if c in cols), None)
    if text_col is None or not ({"answer", "solution"} & cols.keys()):
        raise ConfigurationError(f"{source} has the columns {list(df.columns)}, which match no "
                                 f"known layout. Expected one of: {EXPECTED}")
    expected: list[str | None]
    if "answer" in cols and _gsm8k(df[cols["answer"]]):
        expected = [_after_hashes(a) for a in df[cols["answer"]]]
    elif "answer" in cols:
        expected = [str(a).strip() for a in df[cols["answer"]]]
    else:
        expected = [extract_boxed(str(s)) for s in df[cols["solution"]]]
        missing = [i for i, e in enumerate(expected) if e is None]
        if missing:
            raise ConfigurationError(f"{source}: the solutions of rows {missing[:5]} hold no "
                                     "\\boxed{} answer, and there is no `answer` column")
    out = pd.DataFrame({"prompt": [str(t) for t in df[text_col]], "expected": expected,
                        "kind": "math"})
    id_col = next((cols[c] for c in _IDS if c in cols), None)
    if id_col is not None:
        out.insert(0, "prompt_id", [str(i) for i in df[id_col]])
    return out


def _gsm8k(answers: Any) -> bool:
    """Whether the answers are GSM8K's worked solutions (each ends in `#### N`)."""
    texts = [str(a) for a in answers]
    return bool(texts) and all("####" in t for t in texts)


def _after_hashes(answer: Any) -> str:
    """GSM8K's final answer: the text after `####`, thousands separators dropped."""
    return str(answer).rsplit("####", 1)[1].strip().replace(",", "")
