"""What a grammar costs llama.cpp per reply: enums of growing size against no enum, same run.

Each alternative of an enum is a stack llama.cpp advances for every candidate token, so the
time of a constrained reply grows with the number of values; this is why `dskit/backends/
grammar.py` relaxes grammars over `MAX_GRAMMAR_CHARS`. Prints seconds per reply and the ratio to
the baseline (a plain string field), measured alone on the stand-in.

    ../.venv/bin/python bench_grammar.py [--values 10 100 1000 3000] [--tokens 12]
"""

from __future__ import annotations

import argparse
import statistics
import time

from llama_cpp import Llama, LlamaGrammar

from dskit.backends.grammar import MAX_GRAMMAR_CHARS, convert, to_gbnf
from dskit.weights import files as model_files


def schema(values: int) -> dict:
    """An object with one field: a plain string (0) or an enum of `values` city ids."""
    field = {"type": "string"} if not values else {
        "enum": [f"city-{i:06d}" for i in range(values)]}
    return {"type": "object", "properties": {"city": field}, "required": ["city"]}


def seconds(llm: Llama, gbnf: str, tokens: int, rounds: int) -> float:
    """Median seconds of a greedy constrained reply of at most `tokens` tokens."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        llm.create_completion("Pick a city. JSON:", max_tokens=tokens, temperature=0,
                              grammar=LlamaGrammar.from_string(gbnf, verbose=False))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, nargs="+", default=[10, 100, 1000, 3000])
    parser.add_argument("--tokens", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="qwen2.5-coder:0.5b")
    args = parser.parse_args()
    llm = Llama(model_path=str(model_files.model_path(args.model)), n_ctx=512, verbose=False)
    base = seconds(llm, to_gbnf(schema(0))[0], args.tokens, args.rounds)
    print(f"{args.model}, {args.tokens} tokens, median of {args.rounds}; "
          f"dskit relaxes grammars over {MAX_GRAMMAR_CHARS:,} characters")
    print(f"{'values':>7} {'grammar chars':>14} {'s/reply':>8} {'ratio':>6}")
    print(f"{0:>7} {len(to_gbnf(schema(0))[0]):>14,} {base:>8.2f} {1.0:>6.1f}")
    for n in args.values:
        gbnf = convert(schema(n), relaxed=False)  # as the converter writes it, unrelaxed
        s = seconds(llm, gbnf, args.tokens, args.rounds)
        print(f"{n:>7} {len(gbnf):>14,} {s:>8.2f} {s / base:>6.1f}")


if __name__ == "__main__":
    main()
