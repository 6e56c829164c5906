# SPDX-License-Identifier: Apache-2.0
"""Run inside VM 1 with the system Python: what VM 2's pane relay gives a client without its token.

Prints one JSON document: for each try (no answer, a wrong token's answer),
the lines the relay sent until it closed the connection.

    podman exec -i VM python3 - HOST PORT < this file
"""

import hashlib
import hmac
import json
import socket
import sys


def attempt(host: str, port: int, wrong_token: str | None) -> list:
    sock = socket.create_connection((host, port), timeout=15)
    reader = sock.makefile("rb")
    challenge = json.loads(reader.readline())
    if wrong_token is None:
        sock.sendall(b'{"op": "list"}\n')  # straight to a request, no answer
    else:
        mac = hmac.new(wrong_token.encode(), challenge["nonce"].encode(), hashlib.sha256).hexdigest()
        sock.sendall(json.dumps({"op": "auth", "mac": mac}).encode() + b"\n")
    rest = [json.loads(line) for line in reader if line.strip()]
    sock.close()
    return [challenge, *rest]


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    print(json.dumps({"no_answer": attempt(host, port, None), "wrong_token": attempt(host, port, "x" * 32)}))


main()
