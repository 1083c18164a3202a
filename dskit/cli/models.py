"""`dskit models` and `dskit pull`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import models
from .output import client_for, safe

#: What `dskit models catalog` prints of `models.catalog()`.
CATALOG_COLUMNS = ["tag", "where", "hybrid", "params", "base", "download_GB", "memory_GB",
                   "context", "AIME2024", "AIME2025", "GPQA", "LiveCodeBench"]


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull (Ollama) or assemble (embedded) a model with a progress bar."""
    result = models.pull(args.tag, client_for(args), progress=sys.stderr, force=args.force)
    print(f"{result['tag']}: {result['status']} in {result['seconds']:.1f} s")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Print the catalog, what fits this machine, or what is loaded."""
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_colwidth", 60):
        if args.view == "catalog":
            df = models.catalog(include_standins=not args.deepseek_only)
            # The columns a terminal has room for; the notebook shows the rest.
            print(df[CATALOG_COLUMNS].astype(object).fillna("-").to_string(index=False))
            print("\n" + df.attrs["where"])
        elif args.view == "recommend":
            df = models.recommend()
            print(df[["tag", "download_GB", "memory_GB", "fit", "load_time", "speed"]]
                  .to_string(index=False))
            print("\n" + df.attrs.get("summary", ""))
        else:
            df = models.loaded(client_for(args))
            # model names come from the server
            print(safe(df.to_string(index=False)) if len(df) else "no model is loaded")
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `pull` and `models`."""
    p = sub.add_parser("pull", parents=[common], help="pull a model with a progress bar")
    p.add_argument("tag", help="e.g. deepseek-r1:7b (embedded: qwen2.5-coder:0.5b)")
    p.add_argument("--force", action="store_true", help="skip the disk and memory check")
    p.set_defaults(fn=cmd_pull)
    p = sub.add_parser("models", parents=[common], help="catalog, what fits, what is loaded")
    p.add_argument("view", nargs="?", choices=["catalog", "recommend", "loaded"],
                   default="catalog")
    p.add_argument("--deepseek-only", action="store_true", help="catalog without stand-ins")
    p.set_defaults(fn=cmd_models)
