"""Settings from the environment: the only module of dskit that reads `os.environ`.

Every variable dskit understands is listed in `VARIABLES` (the README's table lists exactly
these; a test checks it). Values are read when asked for, never at import, so a notebook can
set a variable and the next call sees it. Malformed values raise a `ConfigurationError` that
names the variable and a good value.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigurationError, register_secret

#: Variable name → what it means (the README's table, in this order).
VARIABLES: dict[str, str] = {
    "OLLAMA_HOST": "where Ollama listens (default `127.0.0.1:11434`)",
    "DSKIT_BACKEND": "force a backend: `ollama`, `openai` or `embedded`",
    "DSKIT_MODEL": "default model tag",
    "DSKIT_OPENAI_BASE_URL": "OpenAI-compatible server, e.g. `https://api.deepseek.com`",
    "OPENAI_BASE_URL": "the same, read when `DSKIT_OPENAI_BASE_URL` is not set",
    "DSKIT_OPENAI_API_KEY": "API key for the OpenAI-compatible server; never printed",
    "OPENAI_API_KEY": "the same, read when `DSKIT_OPENAI_API_KEY` is not set",
    "DEEPSEEK_API_KEY": "the same, read when neither of the above is set",
    "DSKIT_CACHE_DIR": "where the embedded models are assembled (default: the user cache dir)",
    "DSKIT_KB_DIR": "where knowledge bases live (default: the user data dir)",
    "DSKIT_ARENA_FILE": "the SQLite file arena votes are kept in (default: the user data dir)",
    "DSKIT_THREADS": ("llama.cpp threads (default: physical cores); the local MiniLM embedder "
                      "decodes that many batches side by side, one thread each"),
    "DSKIT_MAX_LOADED": "embedded models kept in memory at once (default: what fits in RAM)",
    "DSKIT_NUM_CTX": "context window, in tokens, the embedded backend loads chat models with "
                     "(default 8192; Binder sets 2048 to save memory)",
    "DSKIT_SERVE_TOKEN": "bearer token `dskit serve` and `dskit mcp --http` require; never printed",
    "DSKIT_IDLE_TIMEOUT": "seconds a server may send nothing mid-reply before the reply counts "
                          "as stalled (default 300)",
    "OLLAMA_API_KEY": "API key the ollama client sends (ollama.com); never printed",
    "DSKIT_APP_MAX_TOKENS": "token budget per reply in `dskit app` (set by its `--max-tokens`)",
    "OLLAMA_MODELS": "where Ollama keeps model files (checked for free disk space)",
    "OLLAMA_MAX_LOADED_MODELS": "models Ollama keeps loaded at once; `side_by_side` runs that many "
                                "at the same time (unset: one after another)",
}

BASE_URL_VARIABLES = ("DSKIT_OPENAI_BASE_URL", "OPENAI_BASE_URL")
API_KEY_VARIABLES = ("DSKIT_OPENAI_API_KEY", "OPENAI_API_KEY", "DEEPSEEK_API_KEY")
BACKENDS = ("ollama", "openai", "embedded")


def _get(name: str) -> str | None:
    """The stripped value of a variable, None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def _secret(name: str) -> str | None:
    """A secret variable's value, remembered so that no error message can show it."""
    value = _get(name)
    register_secret(value)
    return value


def ollama_host() -> str | None:
    """OLLAMA_HOST as given (normalised by the Ollama backend)."""
    return _get("OLLAMA_HOST")


def backend() -> str | None:
    """DSKIT_BACKEND, lower-cased; None means choose automatically."""
    value = _get("DSKIT_BACKEND")
    if value is None or value.lower() == "auto":
        return None
    if value.lower() not in BACKENDS:
        raise ConfigurationError(
            f"DSKIT_BACKEND={value!r}: use one of {', '.join(BACKENDS)} (or unset it for auto)")
    return value.lower()


def model() -> str | None:
    """DSKIT_MODEL: the default model tag."""
    return _get("DSKIT_MODEL")


def openai_base_url() -> str | None:
    """The first of DSKIT_OPENAI_BASE_URL and OPENAI_BASE_URL that is set."""
    return next((v for name in BASE_URL_VARIABLES if (v := _get(name))), None)


def api_key(variable: str | None = None) -> tuple[str, str] | None:
    """(key, the variable it came from): `variable` first, then the usual ones; None if unset.

    The key is a secret: callers keep it out of reprs, messages and logs.
    """
    for name in (variable, *API_KEY_VARIABLES):
        if name and (value := _secret(name)):
            return value, name
    return None


def api_key_variables(variable: str | None = None) -> list[str]:
    """The variable names `api_key` looks at, in order (for messages; never the values)."""
    return [name for name in (variable, *API_KEY_VARIABLES) if name]


def cache_dir() -> Path:
    """Where assembled models live: DSKIT_CACHE_DIR, else the user's cache directory."""
    value = _get("DSKIT_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("dskit"))


def data_dir() -> Path:
    """dskit's folder in the user's data directory (knowledge bases, arena votes)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("dskit", appauthor=False))


def kb_dir() -> Path:
    """Where knowledge bases live: DSKIT_KB_DIR, else the user's data directory."""
    value = _get("DSKIT_KB_DIR")
    if value:
        return Path(value).expanduser()
    return data_dir() / "kb"


def arena_file() -> Path:
    """The SQLite file of arena votes: DSKIT_ARENA_FILE, else `arena.sqlite` in the data dir."""
    value = _get("DSKIT_ARENA_FILE")
    if value:
        return Path(value).expanduser()
    return data_dir() / "arena.sqlite"


def _whole(name: str, example: str) -> int | None:
    value = _get(name)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(f"{name}={value!r} must be a whole number >= 1, e.g. {example}")
    return int(value)


def threads() -> int | None:
    """DSKIT_THREADS: llama.cpp threads, None for the default (physical cores)."""
    return _whole("DSKIT_THREADS", "2")


def max_loaded() -> int | None:
    """DSKIT_MAX_LOADED: embedded models kept in memory at once, None for the default."""
    return _whole("DSKIT_MAX_LOADED", "1")


def num_ctx() -> int | None:
    """DSKIT_NUM_CTX: the embedded backend's context window, None for the default."""
    return _whole("DSKIT_NUM_CTX", "2048")


def ollama_max_loaded_models() -> int | None:
    """OLLAMA_MAX_LOADED_MODELS as this machine sets it (for the local `ollama serve`); None
    when unset or 0 (Ollama then decides by memory: dskit assumes one at a time)."""
    value = _get("OLLAMA_MAX_LOADED_MODELS")
    if value == "0":
        return None
    return _whole("OLLAMA_MAX_LOADED_MODELS", "2")


def secret_values() -> list[str]:
    """The secrets set in the environment (API keys, the serve token), to keep them out of
    anything dskit writes (reports); never printed."""
    names = (*API_KEY_VARIABLES, "DSKIT_SERVE_TOKEN")
    return [v for name in names if (v := _get(name))]


def serve_token() -> str | None:
    """DSKIT_SERVE_TOKEN: the bearer token `dskit serve` and `dskit mcp --http` require (a
    secret)."""
    return _secret("DSKIT_SERVE_TOKEN")


def ollama_api_key() -> str | None:
    """OLLAMA_API_KEY, which the ollama client sends by itself (a secret, never shown)."""
    return _secret("OLLAMA_API_KEY")


def idle_timeout() -> float | None:
    """DSKIT_IDLE_TIMEOUT: seconds a server may stay silent mid-reply; None for the default."""
    value = _get("DSKIT_IDLE_TIMEOUT")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ConfigurationError(f"DSKIT_IDLE_TIMEOUT={value!r} must be a number of seconds "
                                 "above 0, e.g. 600 (R1 may think for minutes)")
    return seconds


def app_max_tokens() -> int | None:
    """DSKIT_APP_MAX_TOKENS: the chat app's token budget per reply."""
    return _whole("DSKIT_APP_MAX_TOKENS", "1024")


def ollama_models_dir() -> Path:
    """Where Ollama keeps model files: OLLAMA_MODELS, else ~/.ollama/models."""
    value = _get("OLLAMA_MODELS")
    return Path(value).expanduser() if value else Path.home() / ".ollama" / "models"


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment with `overrides`, for a child process (`dskit app`)."""
    unknown = [k for k in overrides if k not in VARIABLES]
    if unknown:
        raise ConfigurationError(f"not dskit variables: {', '.join(unknown)}")
    return {**os.environ, **overrides}


def hub_offline() -> None:
    """Tell Hugging Face libraries never to reach a hub: the models ship in packages here."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
