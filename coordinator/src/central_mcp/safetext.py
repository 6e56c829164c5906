# SPDX-License-Identifier: Apache-2.0
"""Text from agents and the API, made safe to print on a person's terminal.

An agent is a model with a shell and may be prompt-injected; what it writes
(progress, notes, results, failure reasons, file lists) reaches people
through the ``central-mcp`` CLI. Printed as it is, a control character in it
could clear the screen (``ESC [2J``), set the terminal's title (``ESC ]0;``),
write the person's clipboard (OSC 52), or move the cursor back (a carriage
return) and print a harmless-looking line over a dangerous one.

:func:`escape` shows every such character as a visible escape (ESC as
``\\x1b``, a carriage return as ``\\r``). Escaping the character that starts
a sequence (ESC, or the C1 controls CSI, OSC, DCS...) is enough: what follows
it is plain printable text. Also escaped: the Unicode controls that reorder
or break lines on screen (bidirectional overrides and isolates, the line and
paragraph separators), and lone surrogates, which JSON allows but a terminal
cannot print.
"""

from __future__ import annotations

import re
from typing import Any

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# DEL and the C1 controls; bidirectional marks, embeddings, overrides and isolates; the line and paragraph
# separators; surrogates. With the C0 controls, all of them (one line) or all but the newline (a block).
_OTHERS = r"\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_ONE_LINE = re.compile(rf"[\x00-\x1f{_OTHERS}]")
_MULTI_LINE = re.compile(rf"[\x00-\x09\x0b-\x1f{_OTHERS}]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(value: Any, keep_newlines: bool = False) -> str:
    """``value`` as text with no character a terminal would act on; newlines kept only if ``keep_newlines``.

    One-line layouts (tables, lists, ``key: value``) keep the default, so a
    newline shows as ``\\n`` and cannot start a line that looks like another
    row or field; a multi-line block (indented by its caller) keeps them.
    """
    text = value if isinstance(value, str) else str(value)
    return (_MULTI_LINE if keep_newlines else _ONE_LINE).sub(_escaped, text)
