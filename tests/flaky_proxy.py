"""A TCP proxy on loopback that fails on purpose, for the retry tests of the remote stores.

``FlakyProxy(port)`` listens on a port of its own and forwards each connection to ``127.0.0.1:port``,
except that the first ``drop`` connections it accepts are closed at once, without a byte: the client
sees the connection reset or closed before any answer, as when a server restarts or a load
balancer drops it. ``drop`` can be raised again at any time to fail the next connections.
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
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="flaky-proxy", daemon=True)

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._listener.close()
        self._thread.join(timeout=5)

    def fail_next(self, connections: int) -> None:
        with self._lock:
            self.drop = connections

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
                # SO_LINGER 0: close with a reset rather than a polite FIN, as a crashed peer does.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return

        def pipe(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        back.start()
        pipe(client, upstream)
        back.join()
        client.close()
        upstream.close()
