"""A report opened in headless Chromium: it loads nothing from anywhere, its images show, and
the model output in it runs nothing."""

from __future__ import annotations

import re

import pytest

import dskit as ds

from .lab import expect

MODELS = ["smollm2:135m", "qwen2.5-coder:0.5b"]
KEY = "sk-browser-2b7e9f41c0d3"


def test_report_opens_offline_with_images_and_inert_answers(page, embedded_client, tmp_path,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")  # doctor() finds no Ollama by chance
    rows = ds.compare(MODELS, "cup-en", client=embedded_client, max_tokens=48, think=True,
                      progress=False, seed=4)
    # What a hostile answer could try: a beacon image, a script, a handler, a javascript: link.
    rows.loc[0, "answer"] = (rows.loc[0, "answer"] + "\n\n<img src='http://127.0.0.1:9/b.png' "
                             "onerror='window.pwned=1'><script>window.pwned=2</script> "
                             "[click](javascript:window.pwned=3) ![x](http://127.0.0.1:9/x.png)")
    path = ds.report(rows, tmp_path / "report.html")
    text = path.read_text("utf-8")
    assert KEY not in text

    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    expect(page.locator("h1")).to_have_text("dskit comparison report")
    plot = page.locator("img.dskit-plot")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth > 300")
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert page.evaluate("() => window.pwned === undefined")
    # every model's samples are there, with verdicts and folded reasoning that opens
    samples = page.locator("section.dskit-sample")
    expect(samples).to_have_count(2)
    for model in MODELS:
        expect(page.locator("section.dskit-sample h3", has_text=model)).to_have_count(1)
    expect(samples.first.locator(".dskit-verdict")).to_contain_text(
        re.compile(r"[✓✗] (correct|wrong) \(expected on the bed\)"))
    details = samples.first.locator("details")
    expect(details).not_to_have_attribute("open", re.compile(".*"))
    details.locator("summary").click()
    expect(details.locator("pre")).to_be_visible()
    expect(samples.first.locator(".dskit-answer")).to_contain_text("<script>")  # as text
    assert page.locator("a[href^='javascript']").count() == 0
    expect(page.locator("table.dskit-summary")).to_contain_text("pass@1")
    expect(page.locator("table.dskit-machine")).to_contain_text("CPU")
