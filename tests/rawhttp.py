"""A raw HTTP/1.1 server on 127.0.0.1 for protocol edge cases no real server produces on demand:
connections dropped mid-stream, malformed bodies, stalls. Handlers write the bytes themselves."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Request:
    """What the client sent: method, path, headers (lower-case names) and body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Handler = Callable[[socket.socket, Request], None]


class RawServer:
    """Accepts connections until closed; each request goes to the handler of its path."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.requests: list[Request] = []
        #: Set when a client closed a connection the handler was still holding (see `linger`).
        self.client_closed = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed by the test
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length", "0") or 0)
            while len(body) < length:
                body += conn.recv(65536)
            request = Request(method, path.split("?")[0], headers, body)
            self.requests.append(request)
            handler = self.routes.get(request.path)
            if handler is None:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            handler(conn, request)

    def linger(self, conn: socket.socket, seconds: float = 30) -> None:
        """Hold the connection open until the client closes it (then set `client_closed`)."""
        conn.settimeout(seconds)
        try:
            while conn.recv(1024):
                pass
        except OSError:
            pass
        self.client_closed.set()

    def close(self) -> None:
        self.sock.close()


def send_json(obj: Any, status: str = "200 OK") -> Handler:
    """A handler answering `obj` as a JSON body."""
    def handler(conn: socket.socket, _request: Request) -> None:
        body = json.dumps(obj).encode()
        conn.sendall(b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (status.encode(), len(body), body))
    return handler


def send_bytes(raw: bytes) -> Handler:
    """A handler writing `raw` (status line, headers and body) as it is."""
    def handler(conn: socket.socket, _request: Request) -> None:
        conn.sendall(raw)
    return handler


def chunked_head(conn: socket.socket, content_type: str = "application/x-ndjson") -> None:
    """Start a chunked 200 response."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                 % content_type.encode())


def chunk(conn: socket.socket, data: bytes) -> None:
    """Send one chunk of a chunked response."""
    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))


def ndjson_lines(conn: socket.socket, *objs: dict[str, Any]) -> None:
    """Send each object as one NDJSON line in its own chunk."""
    for obj in objs:
        chunk(conn, (json.dumps(obj) + "\n").encode())


def stop_while_reading(stream: Any, ready: Callable[[list[Any]], bool]) -> list[Any]:
    """Read a `ChatStream` in a thread until `ready(chunks so far)`, call `stop()` from here, and
    return the chunks; fails when the reading thread does not end (Stop did not work)."""
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(stream), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not ready(got):
        assert time.monotonic() < deadline, "the stream never got ready to be stopped"
        time.sleep(0.01)
    stream.stop()
    reader.join(10)  # bounds a hang only: a Stop that does not work never returns
    assert not reader.is_alive(), "stop() did not end the stream"
    return got
