"""A protocol-level test double of ``cairn agent`` (docs/sidecar-protocol.md, version 1) for the
package's unit tests: it speaks the real framing over a real Unix socket and a real shared file,
keeps committed saves in memory, and lets a test hold, abort or kill saves. Only the unit tests of
the manager's own state machine (test_manager.py) use it; the real sidecar is exercised by
test_integration.py, test_sidecar_launch.py and test_ddp_kill_resume.py."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from cairn._framing import encode_frame, read_frame  # noqa: E402


class FakeSidecar:
    def __init__(self, socket_path: str, run_id: str = "run", rank: int = 0, world_size: int = 1,
                 shm_bytes: int = 1 << 20) -> None:
        self.socket_path, self.run_id, self.rank, self.world_size = socket_path, run_id, rank, world_size
        fd, self.shm_path = tempfile.mkstemp(prefix="cairn-fake-shm-")
        os.ftruncate(fd, shm_bytes)
        os.close(fd)
        self.shm_bytes = shm_bytes
        self.committed: Dict[int, Dict[str, Any]] = {}
        # whole global tensors of a step, as if saved in pieces by other workers: name -> (dtype, array)
        self.global_tensors: Dict[int, Dict[str, Any]] = {}
        self.requests: List[Dict[str, Any]] = []
        self.region_requests: List[Any] = []
        self.hold_waits = False
        self.abort_reason: Optional[str] = None
        self.refuse_commits: Optional[str] = None  # a BadRequest message for every commit_save
        self.due_steps: set = set()
        self._held: List[Any] = []
        self._staged: Dict[int, Dict[str, Any]] = {}
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(socket_path)
        self._server.listen(1)
        self.conn: Optional[socket.socket] = None
        self._send_lock = threading.Lock()
        self._hold_lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    # -- lifecycle
    def kill(self) -> None:
        """Like the sidecar dying: the connection drops with no answer to pending requests."""
        if self.conn is not None:
            self.conn.shutdown(socket.SHUT_RDWR)
        self._server.close()

    def cleanup(self) -> None:
        self.kill()
        for path in (self.shm_path, self.socket_path):
            if os.path.exists(path):
                os.unlink(path)

    def release(self) -> None:
        """Answers every held wait_save."""
        with self._hold_lock:
            self.hold_waits = False
            held, self._held = self._held, []
        for request in held:
            self._answer_wait(request)

    # -- serving
    def _serve(self) -> None:
        """Serves one connection after another (a trainer that restarts re-attaches)."""
        while True:
            try:
                self.conn, _ = self._server.accept()
            except OSError:
                return
            if self._serve_connection(self.conn) == "close" and self.exit_on_close:
                return

    exit_on_close = True

    def _serve_connection(self, conn: socket.socket) -> str:
        while True:
            try:
                request = read_frame(conn)
            except (OSError, ValueError, EOFError):
                return "lost"
            if request is None:
                return "eof"
            self.requests.append(request)
            try:
                reply = self._handle(request)
            except KeyError as e:
                reply = {"ok": False, "error": {"type": "BadRequest", "message": f"missing field {e}"}}
            if reply is not None:
                self._send({"id": request["id"], **reply})
            if request["op"] == "close":
                return "close"

    def _send(self, message: Dict[str, Any]) -> None:
        with self._send_lock:
            try:
                self.conn.sendall(encode_frame(message))
            except OSError:
                pass

    def _handle(self, r: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        op = r["op"]
        if op == "hello":
            latest = max(self.committed) if self.committed else None
            return {"ok": True, "run_id": self.run_id, "rank": self.rank, "world_size": self.world_size,
                    "save_every_steps": 0, "shm_path": self.shm_path, "shm_bytes": self.shm_bytes,
                    "latest": None if latest is None else {"step": latest, "save_id": f"s{latest}"},
                    "sidecar_version": "fake"}
        if op == "save_due":
            return {"ok": True, "due": r["step"] in self.due_steps or self._preempted}
        if op == "preempt":
            self._preempted = True
            return {"ok": True}
        if op == "begin_save":
            if r["bytes"] > self.shm_bytes - 64:
                return {"ok": False, "error": {"type": "Busy", "message": "staging full"}}
            self._staged[r["step"]] = {"offset": 64}
            return {"ok": True, "offset": 64}
        if op == "commit_save" and self.refuse_commits is not None:
            return {"ok": False, "error": {"type": "BadRequest", "message": self.refuse_commits}}
        if op == "commit_save":
            base = self._staged.pop(r["step"])["offset"]
            with open(self.shm_path, "rb") as f:
                data = f.read()
            entries = {}
            for e in r["entries"]:
                start = base + e["offset"]
                entries[e["name"]] = (dict(e), data[start:start + e["length"]])
            self.committed[r["step"]] = {"entries": entries, "metadata": r["metadata"]}
            return {"ok": True}
        if op == "abort_save":
            self._staged.pop(r["step"], None)
            return {"ok": True}
        if op == "wait_save":
            with self._hold_lock:
                if self.hold_waits:
                    self._held.append(r)
                    return None
            self._answer_wait(r)
            return None
        if op == "latest_step":
            return {"ok": True, "step": max(self.committed) if self.committed else None}
        if op == "all_steps":
            return {"ok": True, "steps": sorted(self.committed)}
        if op == "restore_open":
            step = r.get("step", max(self.committed) if self.committed else None)
            if step is None:
                return {"ok": True, "step": None}
            if step not in self.committed:
                return {"ok": False, "error": {"type": "NotFound", "message": f"no checkpoint at step {step}"}}
            saved = self.committed[step]
            entries = []
            for meta, _ in saved["entries"].values():
                e = {k: meta[k] for k in ("name", "dtype", "shape", "length", "replicated")}
                e.update({k: meta[k] for k in ("global_shape", "global_offsets") if k in meta})
                entries.append(e)
            tensors = [{"name": n, "dtype": d, "global_shape": list(a.shape)}
                       for n, (d, a) in self.global_tensors.get(step, {}).items()]
            tensors += [{"name": e["name"], "dtype": e["dtype"], "global_shape": e["global_shape"]}
                        for e in entries if "global_shape" in e and e["name"] not in self.global_tensors.get(step, {})]
            return {"ok": True, "step": step, "save_id": f"s{step}", "world_size": self.world_size,
                    "metadata": saved["metadata"], "entries": entries, "tensors": tensors}
        if op == "restore_region":
            return self._region(r)
        if op == "restore_read":
            saved = self.committed[r["step"]]["entries"]
            out, offset = [], 0  # not where the save region was
            with open(self.shm_path, "r+b") as f:
                for name in r["names"]:
                    data = saved[name][1]
                    f.seek(offset)
                    f.write(data)
                    out.append({"name": name, "offset": offset, "length": len(data)})
                    offset += len(data)
            return {"ok": True, "entries": out}
        if op in ("restore_close", "close"):
            return {"ok": True}
        return {"ok": False, "error": {"type": "BadRequest", "message": f"unknown op {op!r}"}}

    _preempted = False

    def put_global(self, step: int, name: str, dtype: str, array: Any) -> None:
        """Makes ``array`` (NumPy; bfloat16 as its int16 bits) the global tensor ``name`` of ``step``,
        as if other workers had saved it in pieces."""
        self.global_tensors.setdefault(step, {})[name] = (dtype, array)
        self.committed.setdefault(step, {"entries": {}, "metadata": {}})

    def _region(self, r: Dict[str, Any]) -> Dict[str, Any]:
        """restore_region as docs/sidecar-protocol.md states it, from a global tensor put by the test,
        or from the one piece (or whole entry) this rank committed."""
        import numpy as np

        name, offsets, shape, dtype = r["name"], r["offsets"], r["shape"], r["dtype"]
        bad = lambda message: {"ok": False, "error": {"type": "BadRequest", "message": message}}  # noqa: E731
        if name in self.global_tensors.get(r["step"], {}):
            stored, array = self.global_tensors[r["step"]][name]
            box = ((0,) * array.ndim, array.shape)
        elif name in self.committed.get(r["step"], {}).get("entries", {}):
            meta, data = self.committed[r["step"]]["entries"][name]
            from cairn._dtypes import numpy_storage_dtype

            stored = meta["dtype"]
            array = np.frombuffer(data, numpy_storage_dtype(stored)).reshape(meta["shape"])
            box = (tuple(meta.get("global_offsets") or (0,) * array.ndim), tuple(meta["shape"]))
        else:
            return {"ok": False, "error": {"type": "NotFound", "message": f"entry '{name}' is not in step {r['step']}"}}
        global_shape = meta.get("global_shape", array.shape) if name not in self.global_tensors.get(r["step"], {}) \
            else array.shape
        if dtype != stored:
            return bad(f"entry '{name}': checkpoint has {stored}, region asks for {dtype}")
        if len(offsets) != len(global_shape) or any(o < 0 or n < 0 or o + n > g for o, n, g in zip(offsets, shape, global_shape)):
            return bad(f"entry '{name}': region {offsets} + {shape} lies outside global shape {list(global_shape)}")
        if any(o < b or o + n > b + m for o, n, b, m in zip(offsets, shape, box[0], box[1])) or self.uncovered:
            return bad(f"entry '{name}': bytes of region {offsets} + {shape} are stored by no piece")
        part = np.ascontiguousarray(array[tuple(slice(o - b, o - b + n) for o, n, b in zip(offsets, shape, box[0]))])
        data = part.astype(part.dtype.newbyteorder("<"), copy=False).tobytes()
        if len(data) > self.shm_bytes:
            return bad(f"entry '{name}': region of {len(data)} bytes exceeds the shared memory of {self.shm_bytes} bytes")
        at = 128 if len(data) + 128 <= self.shm_bytes else 0  # not where a save region was
        with open(self.shm_path, "r+b") as f:
            f.seek(at)
            f.write(data)
        self.region_requests.append((name, list(offsets), list(shape)))
        return {"ok": True, "offset": at, "length": len(data), "bytes_read": len(data)}

    uncovered = False

    def _answer_wait(self, r: Dict[str, Any]) -> None:
        if self.abort_reason is not None:
            self._send({"id": r["id"], "ok": False, "error": {"type": "SaveAborted", "reason": self.abort_reason,
                                                               "message": f"save {r['step']} aborted: {self.abort_reason}"}})
        else:
            self._send({"id": r["id"], "ok": True, "step": r["step"], "save_id": f"s{r['step']}"})
