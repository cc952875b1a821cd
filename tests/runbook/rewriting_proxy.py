"""A loopback endpoint in front of moto that edits chosen answers: for AWS states moto never shows.

moto makes an RDS snapshot `available` the moment it is created; a snapshot that stays `creating` is shown by
forwarding every request to moto unchanged and editing only the responses of the named actions.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Rewrite = Callable[[str, bytes], bytes]
"""(query-protocol action, response body) -> the body to return instead."""


def _action(body: bytes, path: str) -> str:
    params = urllib.parse.parse_qs(body.decode("utf-8", "replace")) or urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    return params.get("Action", [""])[0]


@contextmanager
def rewriting_proxy(upstream: str, rewrite: Rewrite) -> Iterator[str]:
    """Serve on 127.0.0.1 until the block ends; yields the endpoint URL to put in AWS_ENDPOINT_URL."""
    target = urllib.parse.urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            connection.request("POST", self.path, body=body, headers=headers)
            answer = connection.getresponse()
            content = rewrite(_action(body, self.path), answer.read())
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
            connection.close()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
