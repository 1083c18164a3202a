"""The prompt a server builds from chat messages, rebuilt on the client for a thinking budget.

Ollama's raw `/api/generate` takes the whole prompt as text. To continue a reasoning cut at its
budget, the Ollama backend renders the conversation the way the model's own template does
(from `/api/show`) and appends the reasoning, closed. Ollama's templates are Go templates,
which Python cannot run: the families dskit needs are recognised by their markers and rebuilt
here (the DeepSeek-R1 family's `<｜User｜>`/`<｜Assistant｜>`, and ChatML's `<|im_start|>`).
A Jinja template (what `dskit serve` reports from a GGUF) is run in Jinja's sandbox.
"""

from __future__ import annotations

from ..errors import BudgetUnsupported

USER, ASSISTANT, EOS = "<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"


def render(template: str, messages: list[dict[str, str]], setting: str = "think_budget") -> str:
    """The prompt for `messages` up to where the assistant's reply starts.

    Raises `BudgetUnsupported` (naming `setting`) for a template of another family (the
    continuation would be written in the wrong format, which is worse than no budget).
    """
    if "{%" in template:  # Jinja: a GGUF's chat template (dskit serve)
        return _jinja(template, messages, setting)
    if USER in template and ASSISTANT in template:
        return deepseek(messages)
    if IM_START in template:
        return chatml(messages)
    raise BudgetUnsupported("this model's chat template is neither DeepSeek-R1's nor ChatML "
                            "(dskit rebuilds only those two on the client)", setting)


def deepseek(messages: list[dict[str, str]]) -> str:
    """DeepSeek-R1's format, as Ollama's deepseek-r1 template writes it.

    The system prompts come first, then `<｜User｜>` turns and `<｜Assistant｜>` turns (each
    earlier answer closed by `<｜end▁of▁sentence｜>`), ending with `<｜Assistant｜>`. The BOS
    token is the server's to add, as for any prompt.
    """
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    out = [system]
    for i, m in enumerate(turns):
        last = i == len(turns) - 1
        if m["role"] == "user":
            out.append(USER + m["content"])
        elif m["role"] == "assistant":
            out.append(ASSISTANT + m["content"] + ("" if last else EOS))
    if not turns or turns[-1]["role"] != "assistant":
        out.append(ASSISTANT)
    return "".join(out)


def chatml(messages: list[dict[str, str]]) -> str:
    """ChatML (Qwen, QwQ, SmolLM): each turn in `<|im_start|>role … <|im_end|>`."""
    turns = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return f"{turns}{IM_START}assistant\n"


def _jinja(template: str, messages: list[dict[str, str]], setting: str) -> str:
    # Deferred: jinja2 comes with llama-cpp-python, which `dskit serve` needs anyway; the
    # template is data from a server, so it runs in Jinja's sandbox.
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def refuse(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = refuse  # what chat templates call on bad input
    try:
        return env.from_string(template).render(messages=messages, add_generation_prompt=True,
                                                bos_token="", eos_token="")
    except TemplateError as exc:
        raise BudgetUnsupported(f"this model's chat template failed to render ({exc})",
                                setting) from exc
