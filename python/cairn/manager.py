"""CheckpointManager: the trainer-side API of Cairn."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from concurrent.futures import Future
from typing import Any, Dict, List, Mapping, Optional, Union

from . import _restore
from ._codec import Item, leaf_items
from ._framing import Connection
from ._reshard import RestoreStats
from ._shm import SharedFile, align
from ._sidecar import Sidecar
from ._signals import PreemptionHandler
from ._tree import flatten
from .errors import CairnError, SaveAborted, SidecarError, StagingBusy, UnsupportedLeaf

_LOG = logging.getLogger("cairn")
PROTOCOL_VERSION = 1


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    return step


def _check_metadata(metadata: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    out: Dict[str, Any] = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise TypeError(f"metadata key {key!r} is not a str")
        if hasattr(value, "item") and callable(value.item):  # NumPy/torch scalars
            value = value.item()
        if not isinstance(value, (str, bool, int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            raise TypeError(f"metadata '{key}': {value!r} is not a str, bool, int or finite float")
        out[key] = value
    return out


def _failed(error: BaseException) -> "Future[int]":
    future: "Future[int]" = Future()
    future.set_exception(error)
    return future


class CheckpointManager:
    """Saves and restores one trainer's state through a Cairn sidecar.

    ``address`` is the coordinator's ``host:port``. ``sidecar=None`` starts a ``cairn agent``
    child process for this trainer; a path attaches to a sidecar already listening there.
    ``mirrored=True`` marks the whole state as identical on every worker (DDP), so each save
    writes it once, split across workers. SIGTERM asks for an emergency save at the next
    :meth:`save_due` (handler installed when ``handle_sigterm`` and constructed on the main
    thread; a previously installed Python handler is still called). ``tls_ca`` (a PEM file of CA
    certificates) makes the started sidecar connect with TLS; ``tls_cert``/``tls_key`` (PEM, the key
    in PKCS#8) add a client certificate for a coordinator that requires mutual TLS.
    """

    def __init__(self, address: str, run_id: str, rank: int, world_size: int, token: Optional[str] = None,
                 mirrored: bool = False, staging_mib: Optional[int] = None, sidecar: Optional[str] = None,
                 *, handle_sigterm: bool = True, tls_ca: Optional[Union[str, "os.PathLike[str]"]] = None,
                 tls_cert: Optional[Union[str, "os.PathLike[str]"]] = None,
                 tls_key: Optional[Union[str, "os.PathLike[str]"]] = None) -> None:
        if not isinstance(address, str) or not address.rpartition(":")[2].isdigit():
            raise ValueError(f"address must be 'host:port', got {address!r}")
        if not isinstance(run_id, str) or not run_id:
            raise ValueError("run_id must be a non-empty str")
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be an int >= 1, got {world_size!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"rank must be an int in [0, {world_size}), got {rank!r}")
        if staging_mib is not None and (not isinstance(staging_mib, int) or staging_mib < 1):
            raise ValueError(f"staging_mib must be an int >= 1, got {staging_mib!r}")
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together (a client certificate and its key)")
        self._tls = tuple(None if f is None else os.fspath(f) for f in (tls_ca, tls_cert, tls_key))
        self.address, self.run_id, self.rank, self.world_size = address, run_id, rank, world_size
        self.mirrored = bool(mirrored)
        self._token, self._staging_mib, self._sidecar_path = token, staging_mib, sidecar
        self._lock = threading.RLock()
        self._pending: Dict[int, "Future[int]"] = {}
        self._process: Optional[Sidecar] = None
        self._conn: Optional[Connection] = None
        self._shm: Optional[SharedFile] = None
        self._closed = False
        self._warned_dead = False
        self.preempted = False
        self.save_every_steps: Optional[int] = None
        self.last_stall_s: Optional[float] = None
        self.last_restore_stats: Optional[RestoreStats] = None
        self._preemption = PreemptionHandler()
        self._connect()
        if handle_sigterm:
            self._preemption.install()

    # ------------------------------------------------------------ connection

    def _connect(self) -> None:
        if self._sidecar_path is None:
            self._process = Sidecar(self.address, self.run_id, self.rank, self.world_size, self._token, self._staging_mib,
                                    tls=self._tls)
            path = self._process.socket_path
        else:
            path = self._sidecar_path
        try:
            conn = Connection.connect(path)
            self._conn = conn
            hello = conn.call("hello", timeout=60, version=PROTOCOL_VERSION)
            seen = (hello.get("run_id"), hello.get("rank"), hello.get("world_size"))
            if seen != (self.run_id, self.rank, self.world_size):
                raise CairnError(f"the sidecar at {path} serves run {seen[0]!r} rank {seen[1]} of {seen[2]}, "
                                 f"not run {self.run_id!r} rank {self.rank} of {self.world_size}")
            self._shm = SharedFile(str(hello["shm_path"]), int(hello["shm_bytes"]))
            self.save_every_steps = hello.get("save_every_steps")
            self._warned_dead = False
        except BaseException:
            self._disconnect(wait=False)
            raise

    def _disconnect(self, wait: bool) -> None:
        conn, shm, process = self._conn, self._shm, self._process
        self._conn = self._shm = self._process = None
        if conn is not None:
            if wait and conn.alive:
                try:
                    conn.call("close", timeout=60)
                except (CairnError, TimeoutError) as e:
                    _LOG.warning("cairn: close: %s", e)
            conn.close()
        if shm is not None:
            shm.close()
        if process is not None:
            code = process.stop(timeout=60 if wait else 5)
            if code not in (0, None):
                _LOG.warning("cairn: the sidecar exited with status %s: %s", code, " | ".join(list(process.tail)[-3:]))

    def _live(self) -> Connection:
        if self._closed:
            raise CairnError("this CheckpointManager is closed")
        conn = self._conn
        if conn is None or not conn.alive:
            raise SidecarError(f"cairn sidecar at {conn.peer if conn else self._sidecar_path}: "
                               f"{conn.failure if conn else 'not connected'} (call reconnect() to start a new one)")
        return conn

    def reconnect(self) -> None:
        """After the sidecar died: starts a new one (or re-attaches to ``sidecar``) and connects."""
        with self._lock:
            self._check_open()
            self._disconnect(wait=False)
            self._connect()

    def _check_open(self) -> None:
        if self._closed:
            raise CairnError("this CheckpointManager is closed")

    @property
    def sidecar_alive(self) -> bool:
        """False once the sidecar died or the connection was lost."""
        return self._conn is not None and self._conn.alive

    # ------------------------------------------------------------ policy

    def save_due(self, step: int) -> bool:
        """True when the coordinator wants a save at ``step`` (its step or time policy, an operator
        request, or a preemption). Records progress. False while the sidecar is gone, so training
        goes on."""
        _check_step(step)
        try:
            conn = self._live()
            if self._preemption.flag.is_set():
                self._preemption.flag.clear()
                conn.call("preempt", step=step)
                self.preempted = True
                _LOG.warning("cairn: SIGTERM received; asked for an emergency save at step %d", step)
            return bool(conn.call("save_due", step=step).get("due"))
        except SidecarError as e:
            if not self._warned_dead:
                _LOG.warning("cairn: no saves until the sidecar is back: %s", e)
                self._warned_dead = True
            return False

    def request_preemption(self) -> None:
        """What SIGTERM does: the next :meth:`save_due` asks for an emergency save and is true."""
        self._preemption.flag.set()

    # ------------------------------------------------------------ save

    def save(self, step: int, state: Any, metadata: Optional[Mapping[str, Any]] = None) -> "Future[int]":
        """Copies ``state`` into the sidecar's shared memory and returns once it is copied; the
        upload and commit go on in the background. The Future's result is the committed step, or
        it raises :class:`SaveAborted` (``.reason``) / :class:`SidecarError`. Raises at once
        (nothing saved) on a leaf that cannot be stored or bad metadata."""
        _check_step(step)
        meta = _check_metadata(metadata)
        items: List[Item] = []
        for leaf in flatten(state):
            rep = self.mirrored if leaf.replicated is None else leaf.replicated
            items.extend(leaf_items(leaf, rep and leaf.shard is None))
        return self.save_items(step, items, meta)

    def save_items(self, step: int, items: List[Item], meta: Dict[str, Any]) -> "Future[int]":
        """:meth:`save` of entries already described (``cairn._codec.Item``s, e.g. built by the
        DCP storage writer); ``meta`` already checked. Internal API."""
        offsets, total, names = [], 0, set()
        for item in items:
            if item.name in names:
                raise UnsupportedLeaf(f"entry '{item.name}': two leaves map to the same entry name")
            names.add(item.name)
            offsets.append(total)
            total += align(item.length)
        with self._lock:
            started = time.perf_counter()
            try:
                conn = self._live()
                if self._shm is not None and total > self._shm.size:
                    raise StagingBusy(f"save of step {step}: the state needs {total} bytes of staging, the sidecar's shared "
                                      f"memory holds {self._shm.size}; use staging_mib >= {-(-total // (1 << 20))}")
                region = int(conn.call("begin_save", step=step, bytes=total)["offset"])
            except CairnError as e:
                return _failed(e)
            shm = self._shm
            assert shm is not None
            try:
                shm.check(region, total, f"save of step {step}")
                for item, off in zip(items, offsets):
                    item.write(shm, region + off)
            except BaseException:
                conn.request("abort_save", step=step)
                raise
            # The bytes are in shared memory: the stall ends here. The commit's answer is not
            # waited for (a round trip through the sidecar's cold JSON path costs 5-15 ms per
            # save); a refused entry table fails the Future and aborts the save for every worker.
            committing = conn.request("commit_save", step=step, metadata=meta,
                                      entries=[item.describe(off) for item, off in zip(items, offsets)])
            waiting = conn.request("wait_save", step=step)
            self.last_stall_s = time.perf_counter() - started
            return self._track(step, committing, waiting, conn)

    def _track(self, step: int, committing: "Future[Dict[str, Any]]", waiting: "Future[Dict[str, Any]]",
               conn: Connection) -> "Future[int]":
        result: "Future[int]" = Future()
        self._pending[step] = result

        def settle(error: Optional[BaseException], value: Optional[int] = None) -> None:
            if result.done():
                return
            if error is not None:
                result.set_exception(error)
            else:
                result.set_result(value)
            self._pending.pop(step, None)

        def committed(f: "Future[Dict[str, Any]]") -> None:
            error = f.exception()
            if error is not None:
                if conn.alive:
                    conn.request("abort_save", step=step)  # frees the region; the coordinator aborts the save
                settle(error)

        def done(f: "Future[Dict[str, Any]]") -> None:
            # a refused commit is reported with its own error, not the abort that follows it
            if committing.done() and committing.exception() is not None:
                settle(committing.exception())
                return
            error = f.exception()
            settle(error, None if error is not None else int(f.result()["step"]))

        committing.add_done_callback(committed)
        waiting.add_done_callback(done)
        return result

    def wait_until_finished(self) -> None:
        """Waits until every save started so far has committed or failed (the failures are
        reported by their Futures, not raised here)."""
        for future in list(self._pending.values()):
            try:
                future.result()
            except CairnError:
                pass

    # ------------------------------------------------------------ read side

    def latest_step(self) -> Optional[int]:
        """The newest committed step, or None."""
        step = self._live().call("latest_step").get("step")
        return None if step is None else int(step)

    def all_steps(self) -> List[int]:
        """Every committed step whose manifest validates, ascending."""
        return [int(s) for s in self._live().call("all_steps").get("steps", [])]

    def restore_latest(self, state: Any, partial: bool = False) -> Optional[int]:
        """Fills ``state`` in place from the latest checkpoint; its step, or None when there is
        none. Raises :class:`RestoreError` naming the entry on a dtype/shape mismatch or a missing
        entry (skipped instead with ``partial=True``).

        A :class:`cairn.Shard` leaf gets exactly its box of the global tensor, whatever world size
        and split the checkpoint was saved with (the overlapping bytes of the saved pieces are read
        with ranged reads); a plain tensor/array leaf whose name is a tensor saved in pieces gets the
        whole tensor (its shape must be the global shape). What was read is in
        :attr:`last_restore_stats`."""
        return self.restore(None, state, partial)

    def restore(self, step: Optional[int], state: Any, partial: bool = False) -> Optional[int]:
        """Like :meth:`restore_latest` for a given ``step`` (None: the latest)."""
        if step is not None:
            _check_step(step)
        with self._lock:
            conn = self._live()
            assert self._shm is not None
            stats = RestoreStats()
            self.last_restore_stats = stats
            return _restore.restore(conn, self._shm, state, step, partial, stats)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Waits for pending saves, then ends the sidecar session (and the sidecar this manager
        started). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self.wait_until_finished()
            self._closed = True
            self._preemption.uninstall()
            self._disconnect(wait=True)

    def __enter__(self) -> "CheckpointManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"CheckpointManager({self.address!r}, run_id={self.run_id!r}, rank={self.rank}, "
                f"world_size={self.world_size}, mirrored={self.mirrored})")


__all__ = ["CheckpointManager", "SaveAborted"]
