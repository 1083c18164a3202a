"""`dskit kb add|search|ask|list|remove|refresh|rebuild|files`: knowledge bases in a terminal."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from ..embeddings import LEGACY_LOCAL_NAME
from ..errors import OutdatedIndexWarning
from ..kb.excerpt import excerpt
from ..kb.knowledge import ASK_THRESHOLD, KnowledgeBase, kb_home, list_kbs, outdated_note
from .output import (
    REPLY_OK,
    chat_kwargs,
    client_for,
    expected_arg,
    print_verdict,
    safe,
    stream_to,
    table,
)


def _kb(args: argparse.Namespace, create: bool = False) -> KnowledgeBase:
    """The named knowledge base; only `kb add` creates one (read-only commands create nothing)."""
    kwargs: dict[str, Any] = {"data_dir": args.data_dir, "create": create}
    if getattr(args, "embed_model", None):
        kwargs["embed_model"] = args.embed_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutdatedIndexWarning)  # said once below, without a trace
        kb = KnowledgeBase(args.name, **kwargs)
    if kb.outdated and args.fn is not cmd_rebuild:
        print(f"note: {kb.outdated}", file=sys.stderr)
    return kb


def cmd_add(args: argparse.Namespace) -> int:
    """Index files and folders; print the per-file report."""
    kb = _kb(args, create=True)
    report = kb.add(args.paths, include=args.include, exclude=args.exclude,
                    progress=sys.stderr.isatty())
    print(table(report, ["source", "status", "chunks", "reason"]))
    counts = report["status"].value_counts().to_dict()
    print(f"{kb.name}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f" · {len(kb)} chunks in all")
    return 1 if (report["status"] == "failed").any() else 0


def cmd_search(args: argparse.Namespace) -> int:
    """Print the ranked hits for a query, each with the part of its passage that matched."""
    query = " ".join(args.query)
    hits = _kb(args).search(query, k=args.k, threshold=args.threshold)
    rows = table(hits, ["rank", "score", "source", "location"]).splitlines()
    print(rows[0])
    # Under each row, not in a column: a table cell would cut the passage before its answer.
    for row, text in zip(rows[1:], hits["text"], strict=False):
        print(row)
        print("    " + safe(excerpt(text, query)))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Stream an answer with its sources."""
    question = " ".join(args.question)
    stream = _kb(args).ask(question, args.model, k=args.k, threshold=args.threshold,
                           client=client_for(args), stream=True, **chat_kwargs(args))
    status = stream_to(sys.stdout, stream, args.hide_thinking)
    for source in stream.reply.sources:
        print(safe(source.label()))
    if status == REPLY_OK and args.expect is not None:
        print_verdict(sys.stdout, stream.reply, args.expect, question)
    return status


def cmd_list(args: argparse.Namespace) -> int:
    """Print the knowledge bases."""
    df = list_kbs(args.data_dir)
    print(table(df, list(df.columns)) if not df.empty
          else f"no knowledge bases under {kb_home(args.data_dir)}")
    for name in df.loc[df["embed_model"] == LEGACY_LOCAL_NAME, "name"] if not df.empty else []:
        print(f"note: {outdated_note(name)}", file=sys.stderr)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Remove files or folders from a knowledge base."""
    kb = _kb(args)
    for path in args.paths:
        print(table(kb.remove(path), ["source", "status", "chunks", "reason"]))
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    """Re-scan the added folders."""
    report = _kb(args).refresh(progress=sys.stderr.isatty())
    changed = report[report["status"] != "unchanged"]
    print(table(changed, ["source", "status", "chunks", "reason"]))
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Re-chunk and re-embed every document (e.g. after the embedding engine changed)."""
    kb = _kb(args)
    report = kb.rebuild(embed_model=args.switch_to) if args.switch_to else kb.rebuild()
    print(f"{kb.name}: {len(report)} documents re-embedded with {kb.embed_model} · "
          f"{len(kb)} chunks")
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    """List the documents."""
    print(table(_kb(args).files(), ["source", "chunks", "bytes"]))
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `dskit kb …` on the main parser."""
    group = sub.add_parser("kb", help="knowledge bases: add, search, ask, list, remove, refresh, "
                           "rebuild")
    ksub = group.add_subparsers(dest="kb_command", required=True)
    base = argparse.ArgumentParser(add_help=False)
    base.add_argument("--data-dir", help="where knowledge bases live (default: DSKIT_KB_DIR "
                      "or the user data directory)")
    named = argparse.ArgumentParser(add_help=False, parents=[base])
    named.add_argument("name", help="knowledge base name, e.g. notes")
    p = ksub.add_parser("add", parents=[named], help="add files or folders")
    p.add_argument("paths", nargs="+")
    p.add_argument("--include", action="append", help="glob to include, e.g. '*.md' (repeat)")
    p.add_argument("--exclude", action="append", help="glob to exclude (repeat)")
    p.add_argument("--embed-model", help="embedding model for a new knowledge base "
                   "(default all-minilm:l6-v2; on Ollama e.g. bge-m3)")
    p.set_defaults(fn=cmd_add)
    p = ksub.add_parser("search", parents=[named], help="ranked passages for a query")
    p.add_argument("query", nargs="+")
    p.add_argument("-k", type=int, default=6)
    p.add_argument("--threshold", type=float, default=0.0)
    p.set_defaults(fn=cmd_search)
    p = ksub.add_parser("ask", parents=[named, common], help="answer with cited sources")
    p.add_argument("question", nargs="+")
    p.add_argument("-k", type=int, default=4)
    p.add_argument("--threshold", type=float, default=ASK_THRESHOLD,
                   help="answer only from passages scoring above this")
    p.add_argument("--expect", type=expected_arg, metavar="ANSWER",
                   help="the known answer: print whether the reply got it (✓/✗)")
    p.set_defaults(fn=cmd_ask)
    ksub.add_parser("list", parents=[base], help="list knowledge bases").set_defaults(fn=cmd_list)
    p = ksub.add_parser("remove", parents=[named], help="remove files or folders")
    p.add_argument("paths", nargs="+")
    p.set_defaults(fn=cmd_remove)
    ksub.add_parser("refresh", parents=[named], help="re-scan added folders").set_defaults(
        fn=cmd_refresh)
    p = ksub.add_parser("rebuild", parents=[named], help="re-embed every document")
    p.add_argument("--embed-model", dest="switch_to",
                   help="switch to this embedding model while rebuilding")
    p.set_defaults(fn=cmd_rebuild)
    ksub.add_parser("files", parents=[named], help="list documents").set_defaults(fn=cmd_files)
