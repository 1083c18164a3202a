"""Request bodies: JSON, messages, options, `think` and `keep_alive`, validated into values."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ..backends.base import MAX_TOP_LOGPROBS, Options
from ..recommendations import strip_reasoning
from .errors import ApiError
from .tools_api import message_extras

#: Ollama option name -> (type, llama-cpp-python keyword or "" for the fields Options has).
_OPTIONS: dict[str, tuple[type, str]] = {
    "temperature": (float, ""), "top_p": (float, ""), "seed": (int, ""),
    "num_predict": (int, ""), "num_ctx": (int, ""),
    "top_k": (int, "top_k"), "min_p": (float, "min_p"), "typical_p": (float, "typical_p"),
    "repeat_penalty": (float, "repeat_penalty"),
    "presence_penalty": (float, "presence_penalty"),
    "frequency_penalty": (float, "frequency_penalty"), "tfs_z": (float, "tfs_z"),
    "mirostat": (int, "mirostat_mode"), "mirostat_tau": (float, "mirostat_tau"),
    "mirostat_eta": (float, "mirostat_eta"),
}
#: A budget beyond any context: llama.cpp then stops at the end of the context window.
UNLIMITED = 1 << 30
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
KEEP_DEFAULT = object()  # keep_alive absent: the server's default applies
#: The longest keep-alive Ollama can hold: Go's largest Duration (about 292 years). Ollama
#: turns a negative keep-alive into this value; larger requests are clamped to it here.
MAX_KEEP_ALIVE = (2**63 - 1) / 1e9
#: Whole-number options are Go `int`s in Ollama (64 bits); numbers are `float32`s.
INT_RANGE = (-(2**63), 2**63 - 1)
FLOAT_MAX = 3.4028234663852886e38


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON (use a finite number)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is too large")
    return value


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; 400 otherwise (NaN and Infinity are not JSON)."""
    if not body.strip():
        raise ApiError(400, "missing request body: send a JSON object")
    try:
        data = json.loads(body, parse_constant=_not_json, parse_float=_finite)
    except RecursionError:
        raise ApiError(400, "invalid JSON in the request body: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # also int literals of > 4300 digits
        raise ApiError(400, f"invalid JSON in the request body: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def shown(value: Any) -> str:
    """A short, safe description of a request value for an error message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return json.dumps(value[:40], ensure_ascii=False)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**20:
        return "a number that large"
    return json.dumps(value)


#: Field types as Ollama's Go structs declare them (null is always allowed: absent).
BOOL, STRING, INTEGER, NUMBER = (bool,), (str,), (int,), (int, float)
LIST, OBJECT = (list,), (dict,)
_TYPE_NAMES = {BOOL: "true or false", STRING: "a string", INTEGER: "a whole number",
               NUMBER: "a number", LIST: "a list", OBJECT: "a JSON object",
               (str, int, float): "a duration such as \"5m\" or a number of seconds",
               (str, list): "a string or a list", (bool, str): "true, false or a level"}


def check_types(body: dict[str, Any], fields: Mapping[str, tuple[type, ...]]) -> None:
    """400 for a field of the wrong JSON type (`"stream": "false"` is not false)."""
    for name, kinds in fields.items():
        value = body.get(name)
        if value is None:
            continue
        # JSON true is a Python int: a boolean passes only where booleans are allowed.
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise ApiError(400, f'"{name}" must be {_TYPE_NAMES.get(kinds, "another type")}, '
                           f"not {shown(value)}")


DURATION = (str, int, float)
OLLAMA_COMMON = {"model": STRING, "stream": BOOL, "keep_alive": DURATION, "options": OBJECT,
                 "think": (bool, str), "tools": LIST, "images": LIST, "logprobs": BOOL}
OLLAMA_CHAT = {**OLLAMA_COMMON, "messages": LIST}
OLLAMA_GENERATE = {**OLLAMA_COMMON, "prompt": STRING, "system": STRING, "suffix": STRING,
                   "template": STRING, "context": LIST, "raw": BOOL}
OLLAMA_EMBED = {"model": STRING, "input": (str, list), "keep_alive": DURATION,
                "truncate": BOOL, "dimensions": INTEGER, "options": OBJECT}
OLLAMA_EMBEDDINGS = {"model": STRING, "prompt": STRING, "keep_alive": DURATION,
                     "options": OBJECT}
OLLAMA_SHOW = {"model": STRING, "name": STRING, "verbose": BOOL, "system": STRING,
               "template": STRING, "options": OBJECT}
OLLAMA_PULL = {"model": STRING, "name": STRING, "stream": BOOL, "insecure": BOOL}
OPENAI_CHAT = {"model": STRING, "messages": LIST, "stream": BOOL, "stream_options": OBJECT,
               "max_tokens": INTEGER, "max_completion_tokens": INTEGER, "n": INTEGER,
               "seed": INTEGER, "temperature": NUMBER, "top_p": NUMBER,
               "presence_penalty": NUMBER, "frequency_penalty": NUMBER, "stop": (str, list),
               "response_format": OBJECT, "tools": LIST, "reasoning": OBJECT,
               "reasoning_effort": STRING, "logprobs": BOOL}
OPENAI_EMBEDDINGS = {"model": STRING, "input": (str, list), "encoding_format": STRING,
                     "dimensions": INTEGER}


def _number(name: str, value: Any, kind: type) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise ApiError(400, f'option "{name}" must be a number, not {shown(value)}')
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ApiError(400, f'option "{name}" must be a whole number')
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise ApiError(400, f'option "{name}" is out of range (a 64-bit whole number)')
        return int(value)
    if abs(value) > FLOAT_MAX:
        raise ApiError(400, f'option "{name}" is out of range (at most {FLOAT_MAX:.3g})')
    return float(value)


def stop_list(value: Any, name: str = "stop") -> list[str]:
    """`stop` as a list of strings (a single string is accepted)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return [s for s in value if s]
    raise ApiError(400, f'option "{name}" must be a string or a list of strings')


def parse_options(raw: Any) -> Options:
    """Ollama's `options` as backend `Options`; unknown runner settings are ignored (as Ollama
    ignores those that do not apply), wrongly typed values are refused."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ApiError(400, "options must be a JSON object, e.g. {\"temperature\": 0.2}")
    opts = Options(max_tokens=UNLIMITED)
    for name, value in raw.items():
        if name == "stop":
            opts.stop = stop_list(value)
            continue
        spec = _OPTIONS.get(name)
        if spec is None or value is None:
            continue
        kind, llama_name = spec
        number = _number(name, value, kind)
        if llama_name:
            opts.extra[llama_name] = number
        elif name == "num_predict":
            # Ollama: -1 generates until the context is full; 0 and below mean no limit here.
            opts.max_tokens = int(number) if number > 0 else UNLIMITED
        elif name == "num_ctx":
            if number > 0:
                opts.num_ctx = int(number)
        else:
            setattr(opts, name, number)
    return opts.checked()


def parse_think(raw: Any) -> bool | None:
    """`think`: true/false, or an effort level ("low"/"medium"/"high") meaning true."""
    if raw is None or isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("low", "medium", "high"):
        return True
    raise ApiError(400, f"think must be true, false, \"low\", \"medium\" or \"high\", not "
                   f"{shown(raw)}")


def _top_logprobs(raw: Any) -> int | None:
    """`top_logprobs`: None when absent, else a whole number from 0 to MAX_TOP_LOGPROBS."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_TOP_LOGPROBS:
        raise ApiError(400, f"top_logprobs must be a whole number from 0 to {MAX_TOP_LOGPROBS} "
                       f"(the most likely alternatives listed per token), not {shown(raw)}")
    return raw


def parse_ollama_logprobs(body: dict[str, Any]) -> int | None:
    """Ollama's `logprobs` and `top_logprobs` as `ChatRequest.logprobs` (None: off).

    As in Ollama, `logprobs: true` alone gives each token's log-probability without
    alternatives, and `logprobs: false` turns them off whatever `top_logprobs` says. Where
    Ollama ignores `top_logprobs` sent without `logprobs`, a number above 0 asks for them here,
    as `ds.chat(top_logprobs=n)` does: a client asking for alternatives wants them.
    """
    top = _top_logprobs(body.get("top_logprobs"))  # checked even when unused, as Ollama does
    wanted = body.get("logprobs")
    if wanted is True or (wanted is None and top):
        return top or 0
    return None


def parse_openai_logprobs(body: dict[str, Any]) -> int | None:
    """OpenAI's `logprobs` and `top_logprobs` as `ChatRequest.logprobs` (None: off); as
    OpenAI does, `top_logprobs` without `logprobs: true` is a 400."""
    top = _top_logprobs(body.get("top_logprobs"))
    if body.get("logprobs") is not True:
        if top is not None:
            raise ApiError(400, "top_logprobs needs \"logprobs\": true: send both, or leave "
                           "top_logprobs out")
        return None
    return top or 0


def parse_keep_alive(raw: Any, default: float | None) -> float | None:
    """Seconds to keep a model loaded: None forever (negative), 0 unload now."""
    if raw is None:
        return default
    if isinstance(raw, bool):
        raise ApiError(400, "keep_alive must be a duration such as \"5m\", a number of seconds, "
                       "0 (unload now) or -1 (forever)")
    if isinstance(raw, int):
        seconds = float(max(min(raw, 2**63), -1))  # a 400-digit integer is still a number
    elif isinstance(raw, float):
        seconds = raw
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = _duration(text)
    else:
        raise ApiError(400, "keep_alive must be a duration such as \"5m\" or a number of seconds")
    if math.isnan(seconds) or (math.isinf(seconds) and not isinstance(raw, str)):
        raise ApiError(400, "keep_alive must be finite")
    # Clamped as Ollama clamps: nothing stays loaded longer than Go's largest Duration.
    return None if seconds < 0 else min(seconds, MAX_KEEP_ALIVE)


def _duration(text: str) -> float:
    """A Go duration ("5m", "1h30m", "-1s", "500ms") in seconds."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    parts = _DURATION.findall(body)
    if not body or "".join(n + u for n, u in parts) != body or len(body) > 100:
        raise ApiError(400, f"invalid keep_alive duration {text[:40]!r}: use e.g. \"5m\", "
                       "\"1h\", \"30s\", 0 or -1")
    return sign * sum(float(n) * _UNITS[u] for n, u in parts)


def _text(content: Any) -> str:
    """Message content: a string, or OpenAI's list of parts (text parts only)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and \
                    isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict) and part.get("type") in ("image_url", "input_image"):
                raise ApiError(400, "this model does not support images: the embedded "
                               "models are text-only")
            else:
                raise ApiError(400, "message content parts must be {\"type\": \"text\", "
                               "\"text\": ...}")
        return "".join(texts)
    raise ApiError(400, "message content must be a string")


def parse_messages(raw: Any, max_chars: int) -> list[dict[str, Any]]:
    """Chat messages as role/content pairs (with their tool calls and results); reasoning of
    earlier turns is dropped."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ApiError(400, "messages must be a list of {\"role\", \"content\"} objects")
    out: list[dict[str, str]] = []
    for m in raw:
        if not isinstance(m, dict):
            raise ApiError(400, "each message must be an object with role and content")
        role = m.get("role")
        if role == "developer":  # OpenAI's newer name for the system role
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            raise ApiError(400, f"invalid message role {shown(role)}: use system, user, "
                           "assistant or tool")
        if m.get("images"):
            raise ApiError(400, "this model does not support images: the embedded models are "
                           "text-only")
        out.append({"role": role, "content": _text(m.get("content")), **message_extras(m)})
    check_length(sum(len(m["content"]) for m in out), max_chars)
    # Earlier reasoning is never sent back to a model (DeepSeek's advice for R1).
    return strip_reasoning(out)


def check_length(chars: int, max_chars: int) -> None:
    """400 when a prompt is longer than the server accepts."""
    if chars > max_chars:
        raise ApiError(400, f"prompt too long: {chars} characters, this server accepts at "
                       f"most {max_chars} (start it with a larger --max-prompt-chars)")


def parse_texts(raw: Any, max_chars: int, max_items: int = 2048) -> tuple[list[str], bool]:
    """Embedding input: a string or a list of strings; (texts, whether a single one)."""
    if isinstance(raw, str):
        check_length(len(raw), max_chars)
        return [raw], True
    if isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        if len(raw) > max_items:
            raise ApiError(400, f"too many inputs: {len(raw)}, at most {max_items} per request")
        for t in raw:
            check_length(len(t), max_chars)
        return list(raw), False
    raise ApiError(400, "input must be a string or a list of strings")


def parse_dimensions(value: Any, limit: int = 384) -> int | None:
    """The `dimensions` of an embedding request: None, or a whole number in 1..limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ApiError(400, f"dimensions must be a whole number between 1 and {limit}")
    return value
