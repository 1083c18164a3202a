"""`ds.report`: a comparison run as one self-contained page, without secrets, safe to open."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import dskit as ds
from dskit.errors import ConfigurationError
from dskit.evals.prose import findings

KEY = "sk-report-5e1f0a7b9c3d"
MODELS = ["smollm2:135m", "qwen2.5-coder:0.5b"]


@pytest.fixture(scope="module")
def rows(embedded_client: Any) -> pd.DataFrame:
    prompts = pd.concat([ds.prompts.load("cup"), ds.prompts.load("cup-en")], ignore_index=True)
    return ds.compare(MODELS, prompts, client=embedded_client, max_tokens=48, seed=1,
                      think=True, progress=False)


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    monkeypatch.setenv("DSKIT_OPENAI_BASE_URL", "https://me:hunter2pw@example.invalid/v1")
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    # No Ollama here: doctor() must not find one by chance on this machine.
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")


def test_html_report_has_every_part_and_no_secret(rows: pd.DataFrame, tmp_path: Path,
                                                  secrets_set: None):
    page = ds.report(rows, tmp_path / "report.html").read_text("utf-8")
    for part in ("<h2>Settings</h2>", "<h2>Machine</h2>", "<h2>Summary</h2>",
                 "<h2>Sample answers</h2>", "pass@1", "max_tokens", "CPU", "RAM"):
        assert part in page, part
    assert page.count("data:image/png;base64,") == 1
    assert page.count("class='dskit-section dskit-sample'") == 4  # 2 per model
    assert "expected 在床上" in page and "expected on the bed" in page
    assert "<details><summary>Reasoning</summary>" in page
    said = findings(ds.compare.describe(ds.compare.summary(rows)))  # one bullet each
    assert "<ul class='dskit-describe'>" in page and all(f"<li>{line}</li>" in page
                                                         for line in said if "'" not in line)
    assert KEY not in page and "hunter2pw" not in page
    assert f"{Path.home()}/" not in page and "~/.ollama/models" in page
    assert "default-src 'none'" in page
    assert "<th>looped</th>" in page and "<th>think_budget</th>" not in page  # not a sweep


def test_markdown_report(rows: pd.DataFrame, tmp_path: Path, secrets_set: None):
    md = ds.report(rows, tmp_path / "report.md", title="Cup puzzle", samples=1).read_text("utf-8")
    assert md.startswith("# Cup puzzle")
    assert "## Summary" in md and "| model | n | errors | truncated | looped | pass@1 |" in md
    assert md.count("](data:image/png;base64,") == 1
    assert md.count("### ") == 2 and "<details><summary>Reasoning</summary>" in md
    said = findings(ds.compare.describe(ds.compare.summary(rows)))  # one bullet each
    assert sum(line.startswith("- ") for line in md.splitlines()) >= len(said)
    assert KEY not in md and "hunter2pw" not in md and f"{Path.home()}/" not in md


def test_a_summary_alone_makes_a_report_without_samples(rows: pd.DataFrame, tmp_path: Path):
    page = ds.report(ds.compare.summary(rows), tmp_path / "s.html", machine=False)
    text = page.read_text("utf-8")
    assert "<h2>Summary</h2>" in text and "Sample answers" not in text
    assert "<h2>Machine</h2>" not in text


def test_model_output_in_a_report_is_inert(rows: pd.DataFrame, tmp_path: Path):
    evil = rows.copy()
    evil.loc[0, "answer"] = ('<script>alert(1)</script><img src="http://127.0.0.1:9/x" '
                             'onerror="alert(2)"> [go](javascript:alert(3))')
    evil.loc[0, "thinking"] = "</details></pre><script>alert(4)</script>"
    page = ds.report(evil, tmp_path / "evil.html", machine=False).read_text("utf-8").lower()
    assert "<script" not in page and "<img src=\"http" not in page
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", page)
    assert not re.search(r"href\s*=\s*['\"]?\s*javascript:", page)


def test_maths_in_a_report_shows_as_written(rows: pd.DataFrame, tmp_path: Path):
    """Issue 27: the report rendered \\[ as "[" (Markdown's escapes ate the backslash)."""
    from markdown_it import MarkdownIt

    maths = rows.copy()
    answer = "面积是\n\\[\nS = \\frac{1}{2} \\{a_1 * b_1\\}\n\\]\n所以 \\(x_1\\) 是 3。"
    maths["answer"] = answer
    page = ds.report(maths, tmp_path / "maths.html", machine=False).read_text("utf-8")
    assert "\\[\nS = \\frac{1}{2} \\{a_1 * b_1\\}\n\\]" in page and "\\(x_1\\)" in page
    md = ds.report(maths, tmp_path / "maths.md", machine=False).read_text("utf-8")
    shown = MarkdownIt("commonmark").render(md)  # what a Markdown viewer shows of the file
    assert "\\[\nS = \\frac{1}{2} \\{a_1 * b_1\\}\n\\]" in shown and "\\(x_1\\)" in shown
    assert "<em>" not in shown


def test_bad_input_is_a_clear_error(rows: pd.DataFrame, tmp_path: Path):
    with pytest.raises(ConfigurationError, match=r"\.html"):
        ds.report(rows, tmp_path / "r.pdf")
    with pytest.raises(ConfigurationError, match=r"ds\.compare"):
        ds.report(pd.DataFrame({"a": [1]}), tmp_path / "r.html")
    with pytest.raises(ConfigurationError, match=r"ds\.compare"):
        ds.report([1, 2], tmp_path / "r.html")  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_a_budget_sweep_report_shows_each_budget(embedded_client: Any, tmp_path: Path):
    sweep = ds.compare([MODELS[1]], "cup-en", client=embedded_client, think_budget=[0, 16, None],
                       max_tokens=64, seed=1, think=True, progress=False)
    page = ds.report(sweep, tmp_path / "sweep.html", samples=1, machine=False).read_text("utf-8")
    assert "<th>think_budget</th>" in page and "<th>budget_hit</th>" in page
    assert page.count("class='dskit-section dskit-sample'") == 3  # one per budget
    for budget in ("0", "16"):
        assert f"<h3>{MODELS[1]} (think_budget={budget}) · " in page
    assert f"<h3>{MODELS[1]} · " in page  # the run without a budget
    assert "(think_budget=16)" in ds.compare.describe(ds.compare.summary(sweep))
    png = base64.b64decode(re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)[1])
    # two panels (accuracy against thinking, latency), not three (size, speed, latency)
    assert int.from_bytes(png[16:20], "big") == 2 * 5 * 90
