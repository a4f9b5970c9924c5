"""A server that accepts connections and never answers: the hung API server or proxy, or a frozen
(SIGSTOPped) one, whose kernel still completes the TCP handshake. Subclasses say what else it
does with a connection (``serve``)."""

from __future__ import annotations

import socket
import threading


class SilentServer:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.accepted = threading.Event()  # the first connection came
        self.arrived = threading.Condition()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.arrived:
                self.conns.append(conn)
                self.arrived.notify_all()
            self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        """What the server does with a connection: here, nothing at all."""
        self.accepted.set()

    def wait_for(self, count: int, timeout: float = 60) -> bool:
        """Until ``count`` connections have come in all."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.conns) >= count, timeout=timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()
