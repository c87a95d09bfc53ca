"""The inline markup rule authors write in causes and fixes (rule-authoring.md): `code`,
**strong**, *emphasis* — one grammar, rendered as HTML tags (fragments.py) or rich styles
(terminal.py). Applied to text already escaped for its target, so it adds these three marks and
nothing else; nothing inside a code span is marked."""

from __future__ import annotations

import re
from collections.abc import Callable

CODE = re.compile(r"`([^`\n]+)`")
STRONG = re.compile(r"\*\*(?=\S)([^*\n]+?)(?<=\S)\*\*")
EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
Mark = Callable[[str], str]


def render_inline(escaped: str, code: Mark, strong: Mark, emphasis: Mark) -> str:
    """`escaped` with each code span, strong and emphasis run wrapped by its function."""
    pieces = CODE.split(escaped)
    for index, piece in enumerate(pieces):
        if index % 2:
            pieces[index] = code(piece)
        else:
            piece = STRONG.sub(lambda m: strong(m.group(1)), piece)
            pieces[index] = EMPHASIS.sub(lambda m: emphasis(m.group(1)), piece)
    return "".join(pieces)
