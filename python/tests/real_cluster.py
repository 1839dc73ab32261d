"""Real processes for the integration tests: the coordinator and the sidecar (``cairn agent``)
from cli/target/cairn.jar (or ``$CAIRN_JAR``). Tests using them skip, with the reason shown, when
the jar is not built."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
JAR = Path(os.environ.get("CAIRN_JAR", REPO / "cli" / "target" / "cairn.jar")).resolve()
JVM = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]


def unavailable() -> str:
    """Why the real processes cannot run here, or '' when they can."""
    if not JAR.is_file():
        return f"{JAR} not built (mvn -o -q -DskipTests package -pl cli -am)"
    return ""


def until(condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Polls ``condition`` (a state another process changes) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def coordinator(tmp_path: Path, world: int, run_id: str, *extra: str, storage_uri: Optional[str] = None
                ) -> Iterator[Tuple[str, Path]]:
    """A coordinator process on loopback with local storage (or ``storage_uri``); yields (host:port,
    local storage root). A coordinator started again with the same ``run_id`` finds the same storage
    (a restart)."""
    port_file = tmp_path / f"coordinator-{run_id}.port"
    port_file.unlink(missing_ok=True)  # a previous coordinator's
    storage = tmp_path / f"store-{run_id}"
    log = open(tmp_path / f"coordinator-{run_id}.log", "a")
    uri = storage_uri or f"file://{storage}"
    process = subprocess.Popen([*JVM, "-jar", str(JAR), "coordinator", "--storage", uri, "--world", str(world),
                                "--port", "0", "--port-file", str(port_file), "--run-id", run_id, *extra],
                               stdout=subprocess.DEVNULL, stderr=log)
    try:
        until(lambda: port_file.exists() or process.poll() is not None, 120, "the coordinator's port file")
        assert process.poll() is None, (tmp_path / f"coordinator-{run_id}.log").read_text()
        yield f"127.0.0.1:{port_file.read_text().strip()}", storage
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


S3_BUCKET, S3_ACCESS, S3_SECRET = "cairn", "cairn-access", "cairn-secret"


@contextlib.contextmanager
def s3_server(tmp_path: Path) -> Iterator[Tuple[str, Path]]:
    """S3Proxy (filesystem blob store, bucket ``cairn``, static credentials), the same server the
    test kit embeds, as its own process from the fat jar; yields (the endpoint URL, the directory
    holding the bucket's objects as files)."""
    base = tmp_path / "s3"
    (base / S3_BUCKET).mkdir(parents=True, exist_ok=True)
    port = free_port()
    props = tmp_path / "s3proxy.properties"
    props.write_text("\n".join([
        f"s3proxy.endpoint=http://127.0.0.1:{port}", "s3proxy.authorization=aws-v2-or-v4",
        f"s3proxy.identity={S3_ACCESS}", f"s3proxy.credential={S3_SECRET}", "jclouds.provider=filesystem",
        f"jclouds.filesystem.basedir={base}", f"jclouds.identity={S3_ACCESS}", f"jclouds.credential={S3_SECRET}", ""]))
    log = open(tmp_path / "s3proxy.log", "w")
    process = subprocess.Popen([*JVM, "-cp", str(JAR), "org.gaul.s3proxy.Main", "--properties", str(props)],
                               stdout=log, stderr=subprocess.STDOUT)

    def listening() -> bool:
        assert process.poll() is None, (tmp_path / "s3proxy.log").read_text()
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        until(listening, 60, "S3Proxy to listen")
        yield f"http://127.0.0.1:{port}", base / S3_BUCKET
    finally:
        _stop(process)
        log.close()


def s3_uri(endpoint: str, prefix: str) -> str:
    """The storage URI of the run root ``prefix`` on the S3 server at ``endpoint``."""
    return (f"s3://{S3_BUCKET}/{prefix}?endpoint={endpoint}&region=us-east-1&pathStyle=true"
            f"&accessKey={S3_ACCESS}&secretKey={S3_SECRET}")


class AgentProcess:
    """A ``cairn agent`` started by hand (as a container sidecar would be); its stdout lines are
    collected so a test can wait for an ``EVENT`` line."""

    def __init__(self, address: str, run_id: str, rank: int, world: int, socket_path: str, log: Path,
                 *extra: str) -> None:
        self.lines: List[str] = []
        self._changed = threading.Condition()
        self._log = open(log, "w")
        self.process = subprocess.Popen(
            [*JVM, "-jar", str(JAR), "agent", "--coordinator", address, "--run-id", run_id, "--rank", str(rank),
             "--world", str(world), "--socket", socket_path, *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, text=True)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<eof>")
            self._changed.notify_all()

    def wait_for(self, prefix: str, timeout: float = 120.0) -> str:
        """The first stdout line starting with ``prefix``; AssertionError at EOF or timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                if "<eof>" in self.lines:
                    raise AssertionError(f"the sidecar exited ({self.process.poll()}) before '{prefix}': {self.lines}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no '{prefix}' from the sidecar in {timeout:.0f} s: {self.lines}")
                self._changed.wait(left)

    def stop(self, timeout: float = 60.0) -> Optional[int]:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._log.close()
