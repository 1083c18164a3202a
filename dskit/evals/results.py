"""A comparison's rows as a table and as a file: the columns and their types, the key of a
row, and the results file (`compare(out=...)`) written row by row and read back exactly."""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .grading import GRADERS

if TYPE_CHECKING:
    import pandas as pd

#: The columns of a comparison, in order.
COLUMNS = [
    "model", "think_budget", "think_min", "prompt_id", "prompt", "sample", "kind", "answer",
    "thinking", "expected", "final", "correct", "ttft_s", "tokens_per_s", "thinking_tokens",
    "answer_tokens", "load_s", "total_s", "budget_hit", "extensions", "done_reason", "error",
    "grader", "conf_k", "conf_mean", "conf_lowest", "conf_bottom", "conf_tail",
]
#: Columns added since the first files were written: an older file is read without them.
_ADDED = ("think_budget", "final", "budget_hit", "think_min", "extensions", "grader",
          "conf_k", "conf_mean", "conf_lowest", "conf_bottom", "conf_tail")
_KEY = ("model", "think_budget", "think_min", "prompt_id", "sample")
_TEXT = ("model", "prompt_id", "prompt", "kind", "answer", "thinking", "expected", "final",
         "done_reason", "error", "grader")
_FLOAT = ("ttft_s", "tokens_per_s", "load_s", "total_s", "conf_mean", "conf_lowest",
          "conf_bottom", "conf_tail")
_INT = ("think_budget", "think_min", "thinking_tokens", "answer_tokens", "extensions", "conf_k")
_BOOL = ("correct", "budget_hit")

Key = tuple[str, "int | None", "int | None", str, int]


def key_of(row: dict[str, Any]) -> Key:
    budget, least = row.get("think_budget"), row.get("think_min")
    return (row["model"], None if budget is None or blank(budget) else int(budget),
            None if least is None or blank(least) else int(least), row["prompt_id"],
            int(row["sample"]))


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(rows, columns=COLUMNS)
    return coerce(df)


def coerce(df: pd.DataFrame) -> pd.DataFrame:
    """Give every column its type, whether the rows came from replies or from a file."""
    import pandas as pd

    df = df.copy()
    for col in _TEXT:
        empty = "" if col in ("answer", "thinking") else None
        df[col] = pd.Series([empty if blank(v) else str(v) for v in df[col]], index=df.index,
                            dtype=object)
    df["sample"] = pd.to_numeric(df["sample"]).astype("int64")
    for col in _FLOAT:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in _INT:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in _BOOL:
        df[col] = pd.Series([as_bool(v) for v in df[col]], index=df.index, dtype=object)
    return df


def blank(v: Any) -> bool:
    import pandas as pd

    if isinstance(v, str):
        return v == ""
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):  # not a scalar
        return False


def as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if blank(v):
        return None
    s = str(v).strip().lower()
    if s in ("true", "1", "1.0"):
        return True
    if s in ("false", "0", "0.0"):
        return False
    return None


#: A cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection
#: list); text cells starting with one, or with the quote itself, get a leading "'" in the
#: file, which dskit removes when it reads the file back.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as written: blanks empty, text cells made inert for spreadsheets."""
    out = {c: ("" if blank(row.get(c)) else row.get(c)) for c in COLUMNS}
    for c in _TEXT:
        value = out[c]
        if isinstance(value, str) and value.startswith(FORMULA_STARTS):
            out[c] = "'" + value
    return out


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    """A row as read: the quote `_csv_row` added is taken off again."""
    return {c: (v[1:] if c in _TEXT and v.startswith("'") else v) for c, v in row.items()}


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, Any]], int]:
    """The header, the complete rows, and how many rows were torn: a crash while a row was
    written leaves it cut (the file does not end with a newline, or it has too few fields);
    every complete row before it is kept."""
    text = path.read_text(encoding="utf-8", errors="replace")
    records = list(csv.reader(io.StringIO(text)))
    if not records:
        return [], [], 0
    header, body = records[0], records[1:]
    torn = 0
    if body and not text.endswith(("\n", "\r")):
        body, torn = body[:-1], 1  # rows are written whole, ending with a newline
    rows = []
    for record in body:
        if len(record) != len(header):
            torn += 1
            continue
        rows.append(_from_csv(dict(zip(header, record, strict=True))))
    return header, rows, torn


def _older(columns: list[str]) -> bool:
    """Whether a file's columns are those of an older dskit: ours in order, some added missing."""
    return columns == [c for c in COLUMNS if c in columns] and \
        all(c in columns for c in COLUMNS if c not in _ADDED)


def grader_name(grader: Any) -> str | None:
    """How a row records the grader it was graded with: a name in `grading.GRADERS`, a
    function's own name (which `ds.compare.anatomy(graders=)` must be given again), or None."""
    if grader is None or isinstance(grader, str):
        return grader
    named = [name for name, fn in GRADERS.items() if fn is grader]
    return named[0] if named else getattr(grader, "__name__", type(grader).__name__)


class ResultsFile:
    """Where finished rows go as they complete: a CSV appended row by row, or a Parquet file
    rewritten atomically after each row (Parquet cannot be appended to)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise ConfigurationError(
                f"out={str(path)!r}: use a .csv or .parquet file name")
        self.parquet = suffix == ".parquet"
        if self.parquet:
            from importlib.util import find_spec

            if find_spec("pyarrow") is None:
                raise ConfigurationError(
                    f"out={str(path)!r}: writing Parquet needs pyarrow (`pip install pyarrow`); "
                    "or use a .csv file")
        self._fh: Any = None
        self._writer: Any = None
        self._rows: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        """Rows already in the file (the last row wins when a key appears twice)."""
        import pandas as pd

        if not self.path.exists() or self.path.stat().st_size == 0:
            return []
        if self.parquet:
            df = pd.read_parquet(self.path)
        else:
            header, rows, torn = read_csv_rows(self.path)
            if torn:
                warnings.warn(f"{self.path}: {torn} row(s) cut off while being written (a "
                              "crash?) are left out and run again; every complete row is kept",
                              stacklevel=4)
            df = pd.DataFrame(rows, columns=header)
        if _older(list(df.columns)):  # written before some columns were added: blank there
            df = df.reindex(columns=COLUMNS)
        if list(df.columns) != COLUMNS:
            raise ConfigurationError(
                f"{self.path} is not a dskit comparison file (its columns are "
                f"{list(df.columns)}): choose another `out` file, or pass resume=False to "
                "overwrite it")
        df = coerce(df[COLUMNS]).drop_duplicates(list(_KEY), keep="last")
        return df.to_dict("records")

    def open(self, kept: list[dict[str, Any]]) -> None:
        """Start writing: the file is rewritten with `kept` (atomically), then rows append."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows = list(kept)
        if self.parquet:
            return
        # Rewritten rather than appended to, so a rerun never leaves a key twice in the file.
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for row in kept:
                writer.writerow(_csv_row(row))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._fh = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=COLUMNS)

    def write(self, row: dict[str, Any]) -> None:
        if self.parquet:
            self._rows.append(row)
            tmp = self.path.with_suffix(".parquet.tmp")
            frame(self._rows).to_parquet(tmp, index=False)
            os.replace(tmp, self.path)
            return
        self._writer.writerow(_csv_row(row))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


