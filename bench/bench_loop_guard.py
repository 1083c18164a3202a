"""The loop guard: time saved on prompts where the stand-ins loop, and false stops elsewhere.

What it measures
    * Loops: ``dskit.compare`` on prompts where the embedded stand-ins fall into degenerate
      repetition (smollm2:135m, greedy: temperature 0, so a loop seen once comes back every
      run), the same prompts and samples with ``loop_guard=False`` and then
      ``loop_guard=True``, one run each, ``max_tokens`` as given (default 2048). Reported: the
      wall time of each run, the speed-up (off / on; target >= 3x), how many replies each run
      ended by "repetition" or "length", and pass@1 of both (the guard must not cost right
      answers).
    * Legitimate long replies: ``LEGITIMATE`` asks both stand-ins for long structured answers
      (counting, numbered lists, tables, code with repeated lines, Chinese text) with the
      guard on; every reply stopped by the guard is printed with the unit it repeated, for a
      person to judge. Target: 0 stops on >= 30 replies.

How to run
    .venv/bin/python bench/bench_loop_guard.py [--max-tokens 2048] [--samples 1]

    Takes about six minutes on 2 idle cores (most of it the unguarded loops). Run it alone on
    an idle machine. Exit code 0 always; a missed target is printed as FAIL.
"""

from __future__ import annotations

import argparse
import time

from machine import machine_facts  # bench/machine.py: scripts run from bench/

import dskit as ds
from dskit.backends.embedded import EmbeddedBackend

SMALL, QWEN = "smollm2:135m", "qwen2.5-coder:0.5b"
#: (model, prompt, expected): prompts on which smollm2 was seen to loop when greedy (700 tokens
#: allowed: the first three were stopped within 460 tokens; the fourth repeated "蓝色色色！"
#: until the limit, before the guard measured bytes rather than characters).
LOOPING = [
    (SMALL, ds.prompts.cup_puzzle("zh").prompt, "在床上"),
    (SMALL, "一本书 12 元，买 3 本要多少钱？", "36"),
    (SMALL, "我有三个杯子，每个杯子里有两个球。一共有几个球？", "6"),
    (SMALL, "请用中文回答：天空为什么是蓝色的？", ""),
]
#: Requests for long, structured, legitimate replies (English and Chinese).
LEGITIMATE = [
    "Count from 1 to 150, separated by commas.",
    "List 40 different fruits as a numbered list.",
    "Write a Markdown table of the numbers 1 to 30 with their squares and cubes.",
    "Write Python unit tests that check add(i, i) == 2*i for i from 0 to 30, one assert per "
    "line.",
    "Print the multiplication table from 1 × 1 to 9 × 9, one line per product.",
    "Write an HTML list with 40 items named item 1 to item 40.",
    "用中文列出一年十二个月，每个月写一句话介绍天气。",
    "用中文写出从一到五十的数字，用逗号隔开。",
    "写一个 Markdown 表格：中国十个城市的名字和所在的省份。",
    "Write a CSV file with columns id,value for ids 1 to 60, value = id squared.",
    "Write 30 sentences, each starting with 'Step N:' about making tea.",
    "Write a SQL INSERT statement with 30 rows of sample users (id, name, age).",
    "List the numbers from 100 down to 40, one per line.",
    "写二十条学习编程的建议，每条一行，用数字编号。",
    "Write a Python function with 25 if-statements mapping numbers 1 to 25 to their English "
    "names.",
]


def loop_runs(client: ds.Client, samples: int, max_tokens: int) -> None:
    table = ds.prompts.load([ds.prompts.Prompt(id=f"loop-{i}", prompt=p, expected=e or None,
                                               kind="math" if e.isdigit() else "text",
                                               grader="cup" if e == "在床上" else None)
                             for i, (_, p, e) in enumerate(LOOPING)])
    models = list(dict.fromkeys(m for m, _, _ in LOOPING))
    times, frames = {}, {}
    for guard in (False, True):
        t0 = time.perf_counter()
        frames[guard] = ds.compare(models, table, samples=samples, client=client,
                                   max_tokens=max_tokens, temperature=0, seed=1,
                                   loop_guard=guard, progress=False)
        times[guard] = time.perf_counter() - t0
    for guard in (False, True):
        df = frames[guard]
        ends = df["done_reason"].value_counts().to_dict()
        s = ds.compare.summary(df)
        print(f"loop_guard={guard}: {times[guard]:.1f} s for {len(df)} replies, endings {ends}, "
              f"pass@1 {s['pass@1'].round(2).tolist()}, mean tokens "
              f"{(df['thinking_tokens'] + df['answer_tokens']).mean():.0f}")
    speedup = times[False] / times[True]
    print(f"loops: guard off / on = {speedup:.1f}x (target >= 3x: "
          f"{'PASS' if speedup >= 3 else 'FAIL'})")


def legitimate_runs(client: ds.Client, max_tokens: int) -> None:
    stops, n = 0, 0
    for model in (SMALL, QWEN):
        for i, prompt in enumerate(LEGITIMATE):
            reply = client.chat(prompt, model, max_tokens=max_tokens, temperature=0, seed=i,
                                loop_guard=True)
            n += 1
            if reply.done_reason == "repetition":
                stops += 1
                print(f"STOPPED {model}: {prompt!r}\n  {reply.notes[-1]}\n  "
                      f"...{reply.answer[-300:]!r}")
            print(f"{model}: {len(reply.answer)} chars, {reply.done_reason}: {prompt[:50]!r}")
    print(f"legitimate: {stops} stops on {n} long replies (target 0 on >= 30: "
          f"{'PASS' if stops == 0 and n >= 30 else 'FAIL'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--legit-max-tokens", type=int, default=400)
    args = parser.parse_args()
    print(machine_facts())
    client = ds.connect(EmbeddedBackend(n_ctx=4096), set_default=False)
    for model in (SMALL, QWEN):
        client.chat("hi", model, max_tokens=1)  # load both before any timing
    loop_runs(client, args.samples, args.max_tokens)
    legitimate_runs(client, args.legit_max_tokens)


if __name__ == "__main__":
    main()
