"""Starting the real sidecar (``cairn agent`` from cli/target/cairn.jar) as a child process: the
arguments, the token through the environment only, and a sidecar that exits before it is ready."""

import os
from pathlib import Path

import pytest

import cairn
import real_cluster
from cairn._sidecar import find_command

needs_jar = pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available")


@pytest.fixture
def secured(tmp_path, monkeypatch):
    monkeypatch.setenv("CAIRN_JAR", str(real_cluster.JAR))
    monkeypatch.setenv("CAIRN_JAVA_OPTS", "-Xmx256m -XX:TieredStopAtLevel=1")
    with real_cluster.coordinator(tmp_path, 1, "run-7", "--token", "s3cret") as (address, _):
        yield address


@needs_jar
def test_the_started_sidecar_gets_the_agent_arguments_and_the_token_by_environment(secured):
    mgr = cairn.CheckpointManager(secured, run_id="run-7", rank=0, world_size=1, token="s3cret", staging_mib=16,
                                  handle_sigterm=False)
    process = mgr._process.process
    argv = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode().split("\0")
    pairs = dict(zip(argv, argv[1:]))
    assert "agent" in argv and pairs["--coordinator"] == secured and pairs["--run-id"] == "run-7"
    assert pairs["--rank"] == "0" and pairs["--world"] == "1" and pairs["--staging-mib"] == "16"
    assert pairs["--parent-pid"] == str(os.getpid())
    assert not any("s3cret" in a for a in argv)
    assert mgr.save(1, {"x": 5}).result(60) == 1
    socket_dir = os.path.dirname(pairs["--socket"])
    mgr.close()
    assert process.returncode == 0
    assert not os.path.exists(socket_dir)


def test_a_client_certificate_needs_its_key():
    with pytest.raises(ValueError, match="tls_cert and tls_key go together"):
        cairn.CheckpointManager("chief:7400", run_id="r", rank=0, world_size=1, handle_sigterm=False, tls_cert="c.pem")


@needs_jar
def test_a_sidecar_refused_by_the_coordinator_is_reported_with_its_output(secured):
    with pytest.raises(cairn.SidecarError, match=r"exited with status 2 before it was ready: .*cairn: error: .*token"):
        cairn.CheckpointManager(secured, run_id="run-7", rank=0, world_size=1, token="wrong", handle_sigterm=False)


def test_cairn_jar_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("CAIRN_JAR", str(tmp_path / "missing.jar"))
    with pytest.raises(cairn.SidecarError, match="CAIRN_JAR=.*missing.jar is not a file"):
        find_command()
