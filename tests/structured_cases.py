"""Shared by the structured-output and tool tests: a schema, a Chinese text, a tool."""

from __future__ import annotations

from pydantic import BaseModel

QWEN = "qwen2.5-coder:0.5b"
SMALL = "smollm2:135m"
#: Greedy decoding: the same reply on every run, so a test can check it.
GREEDY = {"temperature": 0, "seed": 1}
PROFILE = "张伟今年三十五岁，住在杭州，是一名软件工程师。"


class Person(BaseModel):
    name: str
    city: str
    age: int


#: What PROFILE says.
EXPECTED = Person(name="张伟", city="杭州", age=35)


def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: the first number
        b: the second number
    """
    return a * b
