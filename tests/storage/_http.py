"""A static file server on 127.0.0.1 for tests, with optional Range support and a byte count."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Served:
    """What a running test server sends: its base URL and the body bytes sent so far."""

    url: str
    bytes_sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, n: int) -> None:
        with self.lock:
            self.bytes_sent += n


class _Handler(SimpleHTTPRequestHandler):
    served: Served
    ranges: bool

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        path = self.translate_path(self.path)
        header = self.headers.get("Range")
        if not self.ranges or not header or not os.path.isfile(path):
            self._plain_get(path)
            return
        match = _RANGE.match(header.strip())
        size = os.path.getsize(path)
        if match is None or int(match.group(1)) >= size:
            self.send_error(416)
            return
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)
        self.served.count(len(body))

    def _plain_get(self, path: str) -> None:
        f = self.send_head()
        if f is None:
            return
        try:
            data = f.read()
            self.wfile.write(data)
            self.served.count(len(data))
        finally:
            f.close()


@contextmanager
def serve_folder(folder: Path, *, ranges: bool = True) -> Iterator[Served]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) until the block ends."""
    served = Served(url="")
    handler = type("Handler", (_Handler,), {"served": served, "ranges": ranges})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
