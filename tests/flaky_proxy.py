"""A TCP proxy on loopback that fails on purpose, for the retry tests of the remote stores.

``FlakyProxy(port)`` listens on a port of its own and forwards each connection to ``127.0.0.1:port``,
except that the first ``drop`` connections it accepts are closed at once, without a byte: the client
sees the connection reset or closed before any answer, as when a server restarts or a load
balancer drops it. ``fail_next(n)`` fails the next n connections at any time, and ``sever()``
resets every connection open through the proxy, as a server restart does to its clients.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class FlakyProxy:
    def __init__(self, upstream_port: int, drop: int = 0):
        self.upstream_port = upstream_port
        self.drop = drop
        self.dropped = 0
        self.forwarded = 0
        self.bytes_up = 0  # bytes forwarded from clients to the server
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="flaky-proxy", daemon=True)

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone would not)
        self._listener.close()
        self._thread.join(timeout=5)

    def fail_next(self, connections: int) -> None:
        with self._lock:
            self.drop = connections

    def sever(self) -> None:
        """Reset every open connection, both ways."""
        with self._lock:
            live, self._live = list(self._live), set()
        for sock in live:
            # shutdown wakes the forwarding threads blocked in recv (a close alone would not)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            _reset(sock)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed by __exit__
            with self._lock:
                drop = self.drop > 0
                if drop:
                    self.drop -= 1
                    self.dropped += 1
                else:
                    self.forwarded += 1
            if drop:
                _reset(client)
                continue
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._live.update((client, upstream))

        def pipe(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
                    if source is client:
                        self.bytes_up += len(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        back.start()
        pipe(client, upstream)
        back.join()
        client.close()
        upstream.close()


def _reset(sock: socket.socket) -> None:
    """Close with a reset rather than a polite FIN (SO_LINGER 0), as a crashed peer does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
