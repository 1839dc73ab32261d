"""Length-prefixed JSON frames over a stream socket, and a connection that matches responses to
requests by id (responses may arrive out of order)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import struct
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Dict, Optional

from .errors import SidecarError, from_response

MAX_FRAME = 16 * 1024 * 1024
REQUEST_TIMEOUT_S = float(os.environ.get("CAIRN_REQUEST_TIMEOUT", "300"))
_HEADER = struct.Struct(">I")
_LOG = logging.getLogger("cairn")


def encode_frame(message: Dict[str, Any]) -> bytes:
    """One frame: 4-byte big-endian length, then the UTF-8 JSON of ``message``."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    if not 1 <= len(body) <= MAX_FRAME:
        raise ValueError(f"frame of {len(body)} bytes is outside 1..{MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def _read_exactly(sock: socket.socket, n: int) -> Optional[bytes]:
    """``n`` bytes, or None on a clean EOF before the first byte; EOFError on EOF mid-way."""
    chunks = []
    got = 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            if got == 0:
                return None
            raise EOFError(f"connection closed after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> Optional[Dict[str, Any]]:
    """The next message, or None on EOF at a frame boundary. ValueError on a malformed frame."""
    header = _read_exactly(sock, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    if not 1 <= length <= MAX_FRAME:
        raise ValueError(f"frame length {length} is outside 1..{MAX_FRAME}")
    body = _read_exactly(sock, length)
    if body is None:
        raise EOFError(f"connection closed before a frame body of {length} bytes")
    message = json.loads(body.decode("utf-8"))
    if not isinstance(message, dict):
        raise ValueError(f"frame holds a JSON {type(message).__name__}, not an object")
    return message


class Connection:
    """A request/response connection to the sidecar. A reader thread resolves one Future per
    request id; when the connection ends, every pending and later request fails with
    :class:`SidecarError` naming ``peer``."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self._sock = sock
        self.peer = peer
        self._ids = itertools.count(1)
        self._pending: Dict[int, "Future[Dict[str, Any]]"] = {}
        self._ops: Dict[int, str] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._failure: Optional[str] = None
        self._reader = threading.Thread(target=self._read_loop, name=f"cairn-reader {peer}", daemon=True)
        self._reader.start()

    @classmethod
    def connect(cls, path: str, timeout: float = 10.0) -> "Connection":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            raise SidecarError(f"cannot connect to the cairn sidecar at {path}: {e.strerror or e}") from None
        sock.settimeout(None)
        return cls(sock, path)

    @property
    def alive(self) -> bool:
        return self._failure is None

    @property
    def failure(self) -> Optional[str]:
        return self._failure

    def request(self, op: str, **fields: Any) -> "Future[Dict[str, Any]]":
        """Sends one request; the Future holds the response's fields or the mapped exception."""
        future: "Future[Dict[str, Any]]" = Future()
        with self._lock:
            if self._failure is not None:
                future.set_exception(SidecarError(f"cairn sidecar at {self.peer}: {self._failure}"))
                return future
            request_id = next(self._ids)
            self._pending[request_id] = future
            self._ops[request_id] = op
        frame = encode_frame({"id": request_id, "op": op, **fields})
        try:
            with self._send_lock:
                self._sock.sendall(frame)
        except OSError as e:
            self._fail(f"send failed ({e.strerror or e})")
        return future

    def call(self, op: str, timeout: Optional[float] = None, **fields: Any) -> Dict[str, Any]:
        """Sends one request and waits for its response, at most ``timeout`` seconds (default
        ``$CAIRN_REQUEST_TIMEOUT``, 300). A sidecar that does not answer in time is treated as
        dead: the connection is failed, and so is every pending request."""
        limit = REQUEST_TIMEOUT_S if timeout is None else timeout
        future = self.request(op, **fields)
        try:
            return future.result(limit)
        except FutureTimeout:
            self._fail(f"no answer to {op} in {limit:g} s")
            return future.result(0)

    def close(self) -> None:
        self._fail("connection closed by this trainer")
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=5)

    def _read_loop(self) -> None:
        reason = "the sidecar closed the connection (it exited or died)"
        try:
            while True:
                message = read_frame(self._sock)
                if message is None:
                    break
                self._dispatch(message)
        except (OSError, EOFError) as e:
            reason = f"connection lost ({e})"
        except ValueError as e:
            reason = f"protocol violation from the sidecar ({e})"
        self._fail(reason)

    def _dispatch(self, message: Dict[str, Any]) -> None:
        request_id = message.get("id")
        if request_id == 0 and message.get("ok") is False:
            error = message.get("error") or {}
            raise ValueError(f"sidecar refused a frame: {error.get('message', error)}")
        with self._lock:
            future = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
            op = self._ops.pop(request_id, "?") if isinstance(request_id, int) else "?"
        if future is None:
            raise ValueError(f"response with unknown id {request_id!r}")
        if message.get("ok") is True:
            future.set_result(message)
        else:
            error = message.get("error")
            if not isinstance(error, dict):
                error = {"type": "Internal", "message": f"malformed error response {message!r}"}
            future.set_exception(from_response(error, f"cairn sidecar {op}"))

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self._failure is not None:
                return
            self._failure = reason
            pending = list(self._pending.values())
            self._pending.clear()
            self._ops.clear()
        if pending:
            _LOG.warning("cairn sidecar at %s: %s; failing %d pending request(s)", self.peer, reason, len(pending))
        for future in pending:
            if not future.done():
                future.set_exception(SidecarError(f"cairn sidecar at {self.peer}: {reason}"))
