"""Untrusted text made safe for a terminal: archive member names, paths and event values can
hold escape sequences (clear the screen, set the window title, fake a prompt) and Unicode
direction overrides that reorder what is shown ("Trojan Source"). Each such character is shown
as its `\\xNN`/`\\uNNNN` escape instead; `markup` also escapes rich's `[style]` markup."""

from __future__ import annotations

import re

from rich.markup import escape

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embedding, override
# and isolate characters (Unicode TR9) plus the line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` with every character that could act on a terminal shown as its escape."""
    return _UNSAFE.sub(_escaped, str(text))


def markup(text: object) -> str:
    """`printable(text)`, escaped for rich markup too (for `console.print` of rich strings)."""
    return escape(printable(text))
