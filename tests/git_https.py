# SPDX-License-Identifier: Apache-2.0
"""Git's smart HTTP over TLS for the tests' git server: git-http-backend behind a token check.

Run inside the git server's container as its git user (tests/gitserver.py
starts it), standard library only: what a web server in front of
``git http-backend`` does, and no more. A request without the token gets
401 with a Basic challenge (git then asks its credential helper); with it,
the request goes to git's own ``git http-backend`` as CGI, with the user as
REMOTE_USER (git takes pushes only from an authenticated user). Chunked
request bodies (git sends large pushes so) are joined first.

    python3 git_https.py --port 8443 --cert server.pem --key server.key --token-file token --root /home/git
"""

from __future__ import annotations

import argparse
import base64
import hmac
import ssl
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

BACKEND = "/usr/lib/git-core/git-http-backend"


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _user(self) -> str | None:
        kind, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if kind != "Basic":
            return None
        user, _, password = base64.b64decode(encoded).decode(errors="replace").partition(":")
        return user if hmac.compare_digest(password.encode(), self.server.token.encode()) else None

    def _serve(self) -> None:
        body = self._body()
        user = self._user()
        if user is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        url = urlsplit(self.path)
        env = {
            "GIT_PROJECT_ROOT": self.server.root, "GIT_HTTP_EXPORT_ALL": "1", "REMOTE_USER": user,
            "REQUEST_METHOD": self.command, "PATH_INFO": url.path, "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "PATH": "/usr/bin:/bin",
        }  # fmt: skip
        done = subprocess.run([BACKEND], input=body, env=env, capture_output=True, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve  # noqa: N815 (BaseHTTPRequestHandler's names)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, token: str, root: str) -> None:
        super().__init__(("0.0.0.0", port), Handler)
        self.token, self.root = token, root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--root", default="/home/git")
    args = parser.parse_args()
    with open(args.token_file, encoding="utf-8") as file:
        token = file.read().strip()
    server = Server(args.port, token, args.root)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
