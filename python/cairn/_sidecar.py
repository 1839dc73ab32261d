"""Starting a ``cairn agent`` sidecar as a child process, or finding one to attach to."""

from __future__ import annotations

import collections
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Deque, List, Optional, Tuple

from .errors import SidecarError

_LOG = logging.getLogger("cairn.sidecar")
START_TIMEOUT_S = float(os.environ.get("CAIRN_SIDECAR_START_TIMEOUT", "120"))


def find_command() -> List[str]:
    """The command that runs ``cairn``: ``java -jar $CAIRN_JAR``, else ``java -jar
    cli/target/cairn.jar`` found walking up from this package, else ``cairn`` on PATH."""
    jar = os.environ.get("CAIRN_JAR")
    if jar:
        if not Path(jar).is_file():
            raise SidecarError(f"CAIRN_JAR={jar} is not a file")
        return [*_java(), "-jar", jar]
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "cli" / "target" / "cairn.jar"
        if candidate.is_file():
            return [*_java(), "-jar", str(candidate)]
    launcher = shutil.which("cairn")
    if launcher:
        return [launcher]
    raise SidecarError("cannot find cairn: set CAIRN_JAR to cairn.jar, build cli/target/cairn.jar "
                       "(mvn -o -q -DskipTests package -pl cli -am), or put cairn on PATH")


def _java() -> List[str]:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SidecarError("cannot find java: set JAVA_HOME or put java on PATH")
    opts = os.environ.get("CAIRN_JAVA_OPTS", "-Xmx512m").split()
    return [java, *opts]


class Sidecar:
    """A ``cairn agent`` child process. It exits by itself when this process's connection closes
    or this process dies (``--parent-pid``)."""

    def __init__(self, address: str, run_id: str, rank: int, world_size: int, token: Optional[str],
                 staging_mib: Optional[int], timeout: float = START_TIMEOUT_S,
                 tls: Tuple[Optional[str], Optional[str], Optional[str]] = (None, None, None)) -> None:
        self._dir = tempfile.mkdtemp(prefix="cairn-")
        self.socket_path = os.path.join(self._dir, "agent.sock")
        command = find_command() + [
            "agent", "--coordinator", address, "--run-id", run_id, "--rank", str(rank), "--world", str(world_size),
            "--socket", self.socket_path, "--parent-pid", str(os.getpid())]
        if staging_mib is not None:
            command += ["--staging-mib", str(int(staging_mib))]
        for option, path in zip(("--tls-ca", "--tls-cert", "--tls-key"), tls):
            if path is not None:
                command += [option, path]
        env = dict(os.environ)
        if token is not None:
            env["CAIRN_TOKEN"] = token  # through the environment, not argv (visible to ps)
        self.tail: Deque[str] = collections.deque(maxlen=40)
        self._ready = threading.Event()
        self._ready_line: Optional[str] = None
        _LOG.info("starting the cairn sidecar: %s", " ".join(command))
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, env=env, text=True, errors="replace")
        except OSError as e:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise SidecarError(f"cannot start the cairn sidecar ({command[0]}): {e.strerror or e}") from None
        for stream, is_stdout in ((self.process.stdout, True), (self.process.stderr, False)):
            threading.Thread(target=self._drain, args=(stream, is_stdout), daemon=True,
                             name=f"cairn-sidecar-{'out' if is_stdout else 'err'}").start()
        self._wait_ready(timeout)

    def _drain(self, stream: object, is_stdout: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            line = line.rstrip("\n")
            self.tail.append(line)
            _LOG.info("%s", line)
            if is_stdout and line.startswith("EVENT ready") and not self._ready.is_set():
                self._ready_line = line
                self._ready.set()
        if is_stdout:
            self._ready.set()  # EOF: the process is ending; _wait_ready reports it

    def _wait_ready(self, timeout: float) -> None:
        self._ready.wait(timeout)
        if self._ready_line is not None:
            return
        if self._ready.is_set():
            try:
                what = f"exited with status {self.process.wait(timeout=5)} before it was ready"
            except subprocess.TimeoutExpired:
                what = "closed its output before it was ready"
        else:
            what = f"was not ready after {timeout:.0f} s"
        self.process.kill()
        self.stop(timeout=5)
        last = " | ".join(list(self.tail)[-5:]) or "no output"
        raise SidecarError(f"the cairn sidecar {what}: {last}")

    def describe(self) -> str:
        return f"sidecar pid {self.process.pid} at {self.socket_path}"

    def shm_path(self) -> Optional[str]:
        """The shared staging file the ready line announced, or None."""
        for field in (self._ready_line or "").split():
            if field.startswith("shm="):
                return field[len("shm="):]
        return None

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        """Waits for the sidecar to exit (it does once the connection closed), terminating it
        after ``timeout``; removes the socket directory and, when the sidecar could not (it was
        killed), its shared staging file: tmpfs pages live until the file is deleted. The exit
        status."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _LOG.warning("the cairn sidecar (pid %d) did not exit in %.0f s; terminating it", self.process.pid, timeout)
            self.process.terminate()
            try:
                code = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)
        shm = self.shm_path()
        if shm is not None and os.path.basename(shm).startswith("cairn-"):
            try:
                os.unlink(shm)  # the process has exited: nobody else uses the file
                _LOG.info("removed the shared staging file %s of the ended sidecar", shm)
            except FileNotFoundError:
                pass
            except OSError as e:
                _LOG.warning("could not remove the sidecar's shared staging file %s: %s", shm, e)
        return code
