"""The `dskit` command: in this process on the session's model (`dskit_cli`), and a few real
subprocesses (`run_dskit`) for the console script's own path."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

import dskit as ds
from dskit.cli.output import Printer, print_verdict, safe
from dskit.reasoning.think import Chunk
from dskit.reply import Source
from tests.rawhttp import chunked_head, ndjson_lines, send_json

SMALL = "smollm2:135m"


def test_one_shot_chat_streams_an_answer(run_dskit):
    """A real subprocess (the console script's path), as a user runs it."""
    res = run_dskit("chat", "--backend", "embedded", "--model", SMALL, "--max-tokens", "12",
                "--temperature", "0", "Say hello.")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].strip(), res.stdout
    assert f"embedded:{SMALL}" in res.stdout and "tok/s" in res.stdout


def test_auto_backend_falls_back_to_embedded_without_ollama(dskit_cli):
    res = dskit_cli("chat", "--model", SMALL, "--max-tokens", "6", "Hi")
    assert res.returncode == 0, res.stderr
    assert f"embedded:{SMALL}" in res.stdout


def test_interactive_chat_keeps_a_conversation(dskit_cli):
    res = dskit_cli("chat", "--backend", "embedded", "--model", SMALL, "--max-tokens", "8",
                stdin="Hello there\n/reset\nAnd again\n/quit\n")
    assert res.returncode == 0, res.stderr
    assert "(history cleared)" in res.stdout
    assert res.stdout.count(f"embedded:{SMALL}") >= 3  # banner + two replies


def test_ollama_not_running_is_a_clear_error(run_dskit):
    """A real subprocess (the console script's path), as a user runs it."""
    res = run_dskit("chat", "--backend", "ollama", "Hi")
    assert res.returncode == 2
    assert "OLLAMA_HOST" in res.stderr and "ollama serve" in res.stderr
    assert "Traceback" not in res.stderr


def test_unknown_model_lists_the_available_ones(dskit_cli):
    res = dskit_cli("chat", "--backend", "embedded", "--model", "nope:1b", "Hi")
    assert res.returncode == 2 and SMALL in res.stderr


def test_doctor_prints_a_report(dskit_cli):
    res = dskit_cli("doctor")
    assert res.returncode == 0, res.stderr
    assert "Backend" in res.stdout and "embedded" in res.stdout
    assert "RAM" in res.stdout and "Disk" in res.stdout and "GPU" in res.stdout


def test_printer_sets_reasoning_apart():
    out = io.StringIO()
    p = Printer(out)
    for c in [Chunk("thinking", "let me see"), Chunk("thinking", "…"), Chunk("answer", "42")]:
        p.chunk(c)
    p.end("stats")
    assert out.getvalue() == "[thinking]\nlet me see…\n[/thinking]\n\n42\nstats\n"


def test_printer_hide_thinking():
    out = io.StringIO()
    p = Printer(out, hide_thinking=True)
    for c in [Chunk("thinking", "secret"), Chunk("answer", "42")]:
        p.chunk(c)
    p.end()
    assert "secret" not in out.getvalue() and "(thinking…)" in out.getvalue()
    assert out.getvalue().endswith("42\n")


def test_terminal_control_sequences_from_the_model_are_removed():
    assert safe("ok\x1b[2J\x1b]0;pwned\x07 done\x08\n") == "ok done\n"


def test_models_catalog_recommend_loaded(run_dskit):
    """A real subprocess: "loaded" is asked of a process that has loaded nothing."""
    dskit_cli = run_dskit
    res = dskit_cli("models", "catalog")
    assert res.returncode == 0, res.stderr
    assert "deepseek-r1:70b" in res.stdout and "Llama-3.3-70B-Instruct" in res.stdout
    res = dskit_cli("models", "recommend")
    assert res.returncode == 0 and "fit" in res.stdout and "deepseek-r1:1.5b" in res.stdout
    res = dskit_cli("models", "loaded", "--backend", "embedded")
    assert res.returncode == 0 and "no model is loaded" in res.stdout


def test_pull_on_the_embedded_backend(dskit_cli):
    res = dskit_cli("pull", "smollm2:135m", "--backend", "embedded")
    assert res.returncode == 0, res.stderr
    assert "smollm2:135m: success" in res.stdout
    res = dskit_cli("pull", "deepseek-r1:671b", "--backend", "embedded")
    assert res.returncode == 2 and "does not fit" in res.stderr


def test_compare_writes_csv_and_prints_the_summary(dskit_cli, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is 2+2?\n用一句话介绍北京。\n", encoding="utf-8")
    out = tmp_path / "rows.csv"
    res = dskit_cli("compare", SMALL, "--backend", "embedded", "--prompts", str(prompts),
                "--max-tokens", "8", "--out", str(out), "--seed", "1")
    assert res.returncode == 0, res.stderr
    assert "pass@1" in res.stdout and SMALL in res.stdout and "rows written" in res.stdout
    import csv

    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 2 and {r["model"] for r in rows} == {SMALL}
    # Other programs keeping the CPU busy (a constructed reading): the run says so (issue 27).
    from dskit import sysinfo

    with pytest.MonkeyPatch.context() as m:
        m.setattr(sysinfo.CpuMeter, "load", lambda self: sysinfo.CpuLoad(1.6, 2, 9.0))
        res = dskit_cli("compare", SMALL, "--backend", "embedded", "--prompts", "cup-en",
                        "--max-tokens", "8")
    assert res.returncode == 0, res.stderr
    assert ("Careful: the CPU was busy with other programs during this run (other programs "
            "kept 1.6 of 2 cores busy on average)") in res.stdout


def test_compare_with_confidence_prints_the_votes(dskit_cli, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "计算：45 + 38 等于多少？", "expected": "83", "kind": "math"}\n',
                       encoding="utf-8")
    out = tmp_path / "rows.csv"
    res = dskit_cli("compare", SMALL, "--backend", "embedded", "--prompts", str(prompts),
                    "--samples", "3", "--early-stop", "confidence", "--warmup", "2",
                    "--confidence-window", "4", "--max-tokens", "24", "--seed", "1",
                    "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert re.search(r"majority \d\.\d\d \[|no prompt had graded answers", res.stdout), \
        res.stdout
    import csv

    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 3 and all(r["conf_lowest"] for r in rows)
    res = dskit_cli("compare", SMALL, "--backend", "embedded", "--prompts", str(prompts),
                    "--top-logprobs", "21")
    assert res.returncode == 2 and "0 to 20" in res.stderr


def test_compare_sweeps_budgets_on_a_gsm8k_file(dskit_cli, tmp_path):
    import json

    rows = [{"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"}
            for i in range(1, 6)]
    gsm8k = tmp_path / "gsm8k.jsonl"
    gsm8k.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = dskit_cli("compare", SMALL, "--backend", "embedded", "--prompts", str(gsm8k),
                    "--n", "2", "--think", "--think-budget", "0", "4", "none",
                    "--max-tokens", "24", "--seed", "1")
    assert res.returncode == 0, res.stderr
    assert "think_budget" in res.stdout and "pass@1_low" in res.stdout
    table = [line.split() for line in res.stdout.splitlines() if line.startswith(SMALL)]
    assert [r[1] for r in table] == ["0", "4", "none"]
    # Issue 27: each answer with its verdict, and the summary in words, one finding a line.
    answers = [line for line in res.stdout.splitlines() if line.startswith(("✓", "✗"))]
    assert len(answers) == 6 and all(" expected " in line for line in answers)
    assert [a.split(" · ")[1] for a in answers] == [f"{SMALL} think_budget=0"] * 2 + \
        [f"{SMALL} think_budget=4"] * 2 + [SMALL] * 2
    assert any(line.startswith(f"- {SMALL} (think_budget=4): pass@1")
               for line in res.stdout.splitlines())
    for unreadable in ("<NA>", " inf", " nan", "0.000000"):
        assert unreadable not in res.stdout


def test_app_command_serves_the_packaged_chat_notebook_on_loopback():
    from pathlib import Path

    from dskit.cli import build_parser
    from dskit.cli.serve import app_command

    args = build_parser().parse_args(["app", "--port", "9999", "--model", "smollm2:135m",
                                      "--max-tokens", "64", "--backend", "embedded"])
    cmd, env = app_command(args)
    notebook = Path(cmd[3])
    assert cmd[1:3] == ["-m", "voila"] and notebook.name == "chat_app.ipynb"
    assert notebook.is_file()
    assert "--port=9999" in cmd and "--Voila.ip=127.0.0.1" in cmd
    assert env["DSKIT_MODEL"] == "smollm2:135m" and env["DSKIT_APP_MAX_TOKENS"] == "64"
    assert env["DSKIT_BACKEND"] == "embedded"


def test_compare_where_every_call_fails_exits_non_zero_and_never_duplicates_rows(dskit_cli,
                                                                                  tmp_path):
    out = tmp_path / "rows.csv"
    args = ("compare", "deepseek-r1:1.5b", "deepseek-r1:7b", "--backend", "embedded",
            "--prompts", "cup-en", "--samples", "2", "--out", str(out))
    res = dskit_cli(*args)
    assert res.returncode == 2, res.stdout
    assert "every one of the 4 calls failed" in res.stderr
    assert "DeepSeek-R1 tags need Ollama" in res.stderr  # the reason says the fix
    import csv

    first = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(first) == 4 and all(r["error"] for r in first)
    res = dskit_cli(*args)
    assert res.returncode == 2
    assert len(list(csv.DictReader(out.open(encoding="utf-8")))) == 4  # replaced, not appended


def test_compare_rerun_resumes_without_new_rows(dskit_cli, tmp_path):
    out = tmp_path / "rows.csv"
    args = ("compare", SMALL, "--backend", "embedded", "--prompts", "cup-en", "--samples", "2",
            "--max-tokens", "16", "--out", str(out), "--seed", "1")
    assert dskit_cli(*args).returncode == 0
    res = dskit_cli(*args)
    assert res.returncode == 0, res.stderr
    import csv

    assert len(list(csv.DictReader(out.open(encoding="utf-8")))) == 2
    assert "replies hit the token limit" in res.stdout  # 16 tokens: truncation is said
    assert "cut by the token limit (no final answer)" in res.stdout  # and marked per answer


def test_demo_gives_the_verdict_on_its_answer(run_dskit):
    """A real subprocess (the console script's path), as a user runs it."""
    res = run_dskit("demo", "--backend", "embedded", "--max-tokens", "400")
    assert res.returncode == 0, res.stderr
    assert "expected 7" in res.stdout
    verdict = next(line for line in res.stdout.splitlines() if "expected 7" in line)
    assert verdict.startswith(("✓ correct", "✗ wrong"))
    # right or wrong, the page says it came from a stand-in, and what DeepSeek reports
    assert "stand-in, not DeepSeek-R1" in res.stdout and "MATH-500" in res.stdout


@pytest.mark.subprocess
def test_app_ends_its_voila_server_and_kernels(unused_port, tmp_path):
    import signal
    import time

    import httpx
    import psutil

    app = subprocess.Popen([sys.executable, "-m", "dskit", "app", "--port", str(unused_port),
                            "--no-browser", "--backend", "embedded"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)})
    try:
        deadline = time.monotonic() + 180
        while True:  # the page renders once the notebook ran in a kernel of its own
            try:
                page = httpx.get(f"http://127.0.0.1:{unused_port}/", timeout=120)
                if page.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and app.poll() is None, "dskit app did not start"
            time.sleep(0.5)
        assert "stand-in" in page.text  # the page says what answers
        family = psutil.Process(app.pid).children(recursive=True)
        assert len(family) >= 2  # Voilà and the kernel it started for the page
        app.send_signal(signal.SIGTERM)
        assert app.wait(60) is not None
        _, alive = psutil.wait_procs(family, timeout=30)
        assert alive == []
    finally:
        if app.poll() is None:
            app.kill()


def test_bidi_and_c1_controls_cannot_reorder_or_recolour_the_terminal():
    hostile = ("invoice\u202ecod.exe \u2066x\u2069 \u200fy\u200e z\u061c "  # bidi
               "\x9b31mred\x9b0m \x9d0;title\x9c \x85\x90\x9f "  # 8-bit CSI, OSC, C1
               "\x1b[2J\x1b]0;t\x07")
    shown = safe(hostile)
    assert not any(0x80 <= ord(c) <= 0x9f or c == "\x1b" or c in "\u202a\u202b\u202c\u202d"
                   "\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c" for c in shown)
    assert shown == "invoicecod.exe x y z red   "
    friendly = "龙井茶 · 👩\u200d💻 · naïve café · Ω ≤ 3 · tab\tand\nnewline"
    assert safe(friendly) == friendly  # Chinese, emoji (with their joiner), accents stay


def test_chat_grades_an_answer_given_with_expect(dskit_cli):
    res = dskit_cli("chat", "--backend", "embedded", "--think", "--max-tokens", "300",
                    "12 × 7 = ?", "--expect", "84")
    assert res.returncode == 0, res.stderr
    verdict = next(line for line in res.stdout.splitlines() if "expected 84" in line)
    assert verdict.startswith(("✓ correct", "✗ wrong")), res.stdout
    assert "stand-in, not DeepSeek-R1" in res.stdout and "MATH-500" in res.stdout


def test_chat_grades_dskit_example_questions_by_itself(dskit_cli):
    question = "小明有 5 个苹果，吃了 2 个，又买了 4 个。他现在有几个苹果？"  # the README's
    res = dskit_cli("chat", "--backend", "embedded", "--max-tokens", "200", question)
    assert res.returncode == 0, res.stderr
    verdict = next(line for line in res.stdout.splitlines() if "expected 7" in line)
    assert verdict.startswith(("✓ correct", "✗ wrong")), res.stdout
    # any other question has no known answer: no verdict line
    res = dskit_cli("chat", "--backend", "embedded", "--model", SMALL, "--max-tokens", "6",
                    "Hi")
    assert res.returncode == 0 and "expected" not in res.stdout


def test_an_empty_expect_is_refused(dskit_cli):
    res = dskit_cli("chat", "--backend", "embedded", "Hi", "--expect", " ")
    assert res.returncode == 2 and "--expect 84" in res.stderr


def test_a_reply_the_server_broke_off_exits_non_zero(dskit_cli, raw_server):
    def chat(conn, _request):
        chunked_head(conn)
        ndjson_lines(conn, {"model": "llama3.2:latest", "created_at": "2025-06-01T08:52:19Z",
                            "message": {"role": "assistant", "content": "半句话"},
                            "done": False})
        conn.sendall(b"0\r\n\r\n")  # the response ends without Ollama's final `done` line

    server = raw_server({
        "/api/version": send_json({"version": "0.9.0"}),
        "/api/tags": send_json({"models": [{"name": "llama3.2:latest",
                                            "model": "llama3.2:latest", "size": 1}]}),
        "/api/show": send_json({"details": {"family": "llama"}, "model_info": {},
                                "capabilities": ["completion"]}),
        "/api/ps": send_json({"models": []}),
        "/api/chat": chat})
    res = dskit_cli("chat", "--backend", "ollama", "--model", "llama3.2:latest", "你好",
                    env={"OLLAMA_HOST": server.url})
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "半句话" in res.stdout and "[interrupted:" in res.stdout


STANDIN = "qwen2.5-coder:0.5b"


@pytest.mark.parametrize(("question", "expected", "answer", "scores"), [
    ("12 × 7 = ?", "84", "84", True),
    ("A shop sells pens at 3 yuan each. How much do 14 pens cost?", "42", "42 yuan", True),
    ("小明有 5 个苹果，吃了 2 个，又买了 4 个。他现在有几个苹果？", "7", "7", True),
    ("In which year did Apollo 11 land on the Moon?", "1969", "1969", False),
    ("冲泡龙井茶的水温应该是多少度？", "80", "八十度", False),
    ("What is the capital of France?", "Paris", "Paris", False),
])
def test_published_maths_scores_follow_only_a_maths_problem(question: str, expected: str,
                                                            answer: str, scores: bool) -> None:
    out = io.StringIO()
    print_verdict(out, ds.Reply(answer=answer, model=STANDIN), expected, question)
    assert "stand-in, not DeepSeek-R1" in out.getvalue()
    assert ("MATH-500" in out.getvalue()) is scores, out.getvalue()


def test_a_knowledge_base_answer_never_quotes_maths_scores() -> None:
    """`kb ask … --expect 80`: a number looked up in a passage, even for a question with two
    numbers in it; and the reply that found no passage."""
    source = Source(1, "茶叶笔记.txt", "line 3", 0.4, "冲泡龙井的水温以八十度左右为宜。")
    for reply in (ds.Reply(answer="八十度 [1]", model=STANDIN, sources=[source]),
                  ds.Reply(answer="知识库中没有", model=STANDIN, done_reason="no sources")):
        out = io.StringIO()
        print_verdict(out, reply, "80", "2 杯水和 3 克茶叶用多少度的水？")
        assert "✗" in out.getvalue() or "✓" in out.getvalue()
        assert "MATH-500" not in out.getvalue(), out.getvalue()
    maths = io.StringIO()
    print_verdict(maths, ds.Reply(answer="7", model=STANDIN), ds.prompts.EXAMPLES[2], "")
    assert "MATH-500" in maths.getvalue()  # a maths Prompt brings its kind
