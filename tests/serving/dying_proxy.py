"""A TCP proxy in front of a real server that dies at a chosen request: the server going away mid-command.

Bytes pass through untouched until the request that makes `after + 1` requests containing
`marker` (e.g. b"POST /api/predictions"). Then the proxy dies as a killed server does: that
request is dropped unseen by the server (`cut=None`), or forwarded and only the first `cut`
bytes of its answer passed back; every open connection is closed and the port refuses new ones.
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit


class DyingProxy:
    def __init__(self, upstream: str, marker: bytes, after: int, cut: int | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.marker, self.after, self.cut = marker, after, cut
        self.seen = 0  # requests that contained the marker
        self.struck = False  # the fatal request came
        self.dead = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> DyingProxy:
        return self

    def __exit__(self, *_) -> None:
        self.die()

    def die(self) -> None:
        with self._lock:
            self.dead.set()
            sockets, self._open = [self._listener, *self._open], []
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # died
            server = socket.create_connection(self.upstream)
            with self._lock:
                if self.dead.is_set():
                    _close(client)
                    _close(server)
                    return
                self._open += [client, server]
            answer: dict[str, int] = {}  # "left": bytes of the fatal request's answer still passed back
            threading.Thread(target=self._requests, args=(client, server, answer), daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client, answer), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, answer: dict[str, int]) -> None:
        tail = b""  # a marker may straddle two reads
        while data := _recv(client):
            window = tail + data
            tail = window[-(len(self.marker) - 1) :]
            with self._lock:
                self.seen += window.count(self.marker)
                fatal = not self.struck and self.seen > self.after
                self.struck |= fatal
            if fatal and self.cut is None:
                self.die()
                return
            if fatal:
                answer["left"] = self.cut
            if not _send(server, data):
                break
        _close(client)
        _close(server)

    def _answers(self, server: socket.socket, client: socket.socket, answer: dict[str, int]) -> None:
        while data := _recv(server):
            if "left" in answer:
                _send(client, data[: answer["left"]])
                answer["left"] -= len(data)
                if answer["left"] <= 0:
                    self.die()
                    return
            elif not _send(client, data):
                break
        _close(client)
        _close(server)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def _close(sock: socket.socket) -> None:
    """Shut down first: that wakes a thread blocked in recv() or accept() on it, which close() alone does not."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
