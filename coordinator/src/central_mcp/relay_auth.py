# SPDX-License-Identifier: Apache-2.0
"""The pane relay's handshake and addresses, shared by the relay and the dashboard (standard library only).

A relay on another VM listens on TCP, so anyone on the private network
could connect: every connection first proves it knows the relay's token.
The relay opens with ``{"type": "challenge", "nonce": N}`` (32 random
bytes, hex); the client answers ``{"op": "auth", "mac": HMAC-SHA256(token,
N)}``; the relay says ``{"type": "ok"}`` or an ``error`` and closes. The
token itself never crosses the network and a recorded answer is worthless
for the next connection (a new nonce each time). A relay on a unix socket
(the coordinator's own VM, where file permissions already decide who may
connect) asks for it too when it was given a token.

Addresses are ``unix:/path/to/relay.sock`` or ``tcp:HOST:PORT``
(``tcp:[v6]:PORT`` for an IPv6 literal).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

HANDSHAKE_TIMEOUT_S = 5.0
TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")
_TCP_RE = re.compile(r"tcp:(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})")


@dataclass(frozen=True)
class Address:
    """Where a relay listens: a unix socket path, or a TCP host and port."""

    path: Path | None = None
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, text: str) -> Address:
        """``unix:/abs/path`` or ``tcp:HOST:PORT``; ValueError says what was expected."""
        if text.startswith("unix:"):
            path = Path(text[5:])
            if not path.is_absolute():
                raise ValueError(f"relay address {text!r}: give an absolute socket path, like unix:/run/x/relay.sock")
            return cls(path=path)
        match = _TCP_RE.fullmatch(text)
        if match and 1 <= int(match["port"]) <= 65535:
            return cls(host=match["host"].strip("[]"), port=int(match["port"]))
        raise ValueError(f"relay address {text!r}: expected unix:/path/to/socket or tcp:HOST:PORT (port 1-65535)")

    @property
    def tcp(self) -> bool:
        return self.path is None

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        return f"tcp:[{self.host}]:{self.port}" if ":" in self.host else f"tcp:{self.host}:{self.port}"


def check_token(token: str, what: str) -> str:
    """The token stripped, or ValueError naming ``what`` (a token guessable by length is refused)."""
    token = token.strip()
    if not TOKEN_RE.fullmatch(token):
        raise ValueError(f"{what}: the relay token must be 16-256 letters, digits or . _ ~ + / = -")
    return token


def new_challenge() -> tuple[str, bytes]:
    """A fresh nonce and the line that carries it."""
    nonce = secrets.token_hex(32)
    return nonce, json.dumps({"type": "challenge", "nonce": nonce}).encode() + b"\n"


def mac(token: str, nonce: str) -> str:
    return hmac.new(token.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def answer(token: str, challenge_line: bytes) -> bytes:
    """The client's reply to the relay's challenge line; ValueError if it is not one."""
    message = json.loads(challenge_line or b"{}")
    if not isinstance(message, dict) or message.get("type") != "challenge" or not message.get("nonce"):
        raise ValueError("the relay did not send a challenge: is it an older relay, or not a relay at all?")
    return json.dumps({"op": "auth", "mac": mac(token, str(message["nonce"]))}).encode() + b"\n"


def verify(token: str, nonce: str, reply_line: bytes) -> bool:
    """True when the client's line is the right answer to ``nonce`` (compared in constant time)."""
    try:
        message = json.loads(reply_line)
    except ValueError:
        return False
    if not isinstance(message, dict) or message.get("op") != "auth" or not isinstance(message.get("mac"), str):
        return False
    return hmac.compare_digest(message["mac"].encode(), mac(token, nonce).encode())
