"""Whether a finished answer is one: the degenerate answers small models give after reasoning.

A 0.5B model asked to reason first and then "write only the final answer" often has nothing
left to say after its reasoning and fills the answer with something that only looks like one
(seen in the chat widget, issue 27): the previous turn's answer again ("84" to "Why is the sky
blue?"), a bare number or punctuation to a question that asks for no number ("0"), or a short
word over and over. `degenerate_answer` names such an answer so the reply can say so instead of
showing it as a fine answer; an empty answer is `Reply.no_answer` already.
"""

from __future__ import annotations

import re
import unicodedata

#: A unit with a letter (any script) repeated 4+ times in a row, spanning 12+ characters: "the
#: the the the", "哈哈哈哈哈哈哈哈哈哈哈哈"; never digits alone ("10000" is a number).
_LOOP = re.compile(r"(\S{1,30}?)(?:\s*\1){3,}")
#: Words that ask for a number: an answer that is only a number can be right then.
_ASKS_NUMBER = re.compile(
    r"\d|how (many|much|long|old|far|often)|what (number|percentage|time)|which year|when|"
    r"year|date|age|calculate|compute|count|times|plus|minus|sum|divided|number|"
    r"多少|几|数|计算|算|加|减|乘|除|百分|第|年|哪天|多大|多久|多长",
    re.IGNORECASE)
#: Short answers that can rightly repeat from turn to turn ("yes" to two yes/no questions).
_FREE_TO_REPEAT = {"yes", "no", "true", "false", "ok", "okay", "是", "不是", "对", "不对", "是的",
                   "没有", "有", "好", "可以", "不可以", "会", "不会", "能", "不能"}


def _plain(text: str) -> str:
    """`text` for comparing answers: NFKC, lower case, without punctuation and extra spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(c if c.isalnum() or c.isspace() else " " for c in text)
    return " ".join(kept.split())


def _looping(answer: str) -> bool:
    """Whether the answer holds a word repeated 4+ times in a row over 12+ characters."""
    return any(re.search(r"[^\W\d_]", m.group(1)) and len(m.group(0)) >= 12
               for m in _LOOP.finditer(answer))


def degenerate_answer(answer: str, question: str = "",
                      earlier: list[tuple[str, str]] | None = None) -> str:
    """Why `answer` to `question` is no real answer ("" when it may be one).

    `earlier` are the conversation's earlier turns as (question, answer). Caught: punctuation
    only; only a number (or numbers) when the question asks for none; an earlier answer again
    word for word to another question (yes/no and the like excepted); a word looping.
    """
    text = answer.strip()
    if not text:
        return ""  # an empty answer is `Reply.no_answer`, said by its status already
    if not any(c.isalnum() for c in text):
        return "only punctuation"
    numeric = not any(unicodedata.category(c).startswith("L") for c in text)
    asks_number = _ASKS_NUMBER.search(question) is not None
    plain, asked = _plain(text), _plain(question)
    # Two questions can share a numeric answer (7 × 12 and 12 × 7): not counted as a repeat.
    if earlier and not (numeric and asks_number) and plain not in _FREE_TO_REPEAT \
            and plain != asked \
            and any(_plain(a) == plain and _plain(q) != asked for q, a in earlier):
        return "it repeats an earlier answer word for word"
    if numeric and not asks_number:
        return "only a number, to a question that asks for none"
    if _looping(text):
        return "the same word over and over"
    return ""


def degenerate_note(why: str, reasoned: bool) -> str:
    """What a reply with a degenerate answer says to the learner, with what to try."""
    after = "after its reasoning " if reasoned else ""
    tries = ("raise max tokens, ask again without reasoning (think=False, 'reason first' off), "
             "or start a new chat" if reasoned else "ask again, or start a new chat")
    return (f"The model gave no real answer {after}({why}); what is shown is not an answer to "
            f"the question. Small models do this; try: {tries}.")


def empty_note(reasoned: bool) -> str:
    """What a reply whose answer is empty says (the model stopped by itself, no limit hit)."""
    if reasoned:
        return ("The model gave no answer after its reasoning. Try more max tokens, or ask "
                "without reasoning (think=False, 'reason first' off).")
    return "The model returned an empty answer. Ask again, or rephrase the question."
