"""The `dskit` command: one module per command group, output helpers, the parser and `main`."""

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
