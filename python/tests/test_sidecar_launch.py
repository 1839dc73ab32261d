"""Starting the sidecar as a child process, with a stand-in ``java`` that runs the protocol test
double (tests/fake_sidecar.py) with the arguments the package passes to ``cairn agent``."""

import json
import os
import stat

import pytest

import cairn
from cairn._sidecar import find_command

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def fake_java(tmp_path, monkeypatch):
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\nexec /usr/bin/python3 {HERE}/fake_sidecar.py \"$@\"\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    jar = tmp_path / "cairn.jar"
    jar.write_bytes(b"")
    monkeypatch.setenv("JAVA_HOME", str(home))
    monkeypatch.setenv("CAIRN_JAR", str(jar))
    monkeypatch.setenv("CAIRN_JAVA_OPTS", "")
    monkeypatch.setenv("FAKE_SIDECAR_ARGS", str(tmp_path / "args.json"))
    return tmp_path


def test_the_started_sidecar_gets_the_agent_arguments_and_the_token_by_environment(fake_java):
    mgr = cairn.CheckpointManager("chief:7400", run_id="run-7", rank=1, world_size=3, token="s3cret",
                                  staging_mib=64, handle_sigterm=False)
    launched = json.loads((fake_java / "args.json").read_text())
    argv = launched["argv"]
    assert argv[:3] == ["-jar", str(fake_java / "cairn.jar"), "agent"]
    pairs = dict(zip(argv[3::2], argv[4::2]))
    assert pairs["--coordinator"] == "chief:7400" and pairs["--run-id"] == "run-7"
    assert pairs["--rank"] == "1" and pairs["--world"] == "3" and pairs["--staging-mib"] == "64"
    assert pairs["--parent-pid"] == str(os.getpid())
    assert "s3cret" not in argv and launched["token"] == "s3cret"
    assert mgr.save(1, {"x": 5}).result(10) == 1
    target = {"x": 0}
    assert mgr.restore_latest(target) == 1 and target == {"x": 5}
    process = mgr._process.process
    socket_dir = os.path.dirname(pairs["--socket"])
    mgr.close()
    assert process.returncode == 0
    assert not os.path.exists(socket_dir)


def test_tls_files_are_passed_to_the_sidecar(fake_java):
    ca, cert, key = (fake_java / n for n in ("ca.pem", "client.pem", "client.key"))
    mgr = cairn.CheckpointManager("chief:7400", run_id="run-7", rank=0, world_size=1, handle_sigterm=False,
                                  tls_ca=ca, tls_cert=str(cert), tls_key=key)
    argv = json.loads((fake_java / "args.json").read_text())["argv"]
    pairs = dict(zip(argv[3::2], argv[4::2]))
    assert (pairs["--tls-ca"], pairs["--tls-cert"], pairs["--tls-key"]) == (str(ca), str(cert), str(key))
    mgr.close()
    plain = cairn.CheckpointManager("chief:7400", run_id="run-7", rank=0, world_size=1, handle_sigterm=False)
    argv = json.loads((fake_java / "args.json").read_text())["argv"]
    assert not any(a.startswith("--tls") for a in argv)
    plain.close()


def test_a_client_certificate_needs_its_key():
    with pytest.raises(ValueError, match="tls_cert and tls_key go together"):
        cairn.CheckpointManager("chief:7400", run_id="r", rank=0, world_size=1, handle_sigterm=False, tls_cert="c.pem")


def test_a_sidecar_that_exits_before_ready_is_reported_with_its_output(fake_java, monkeypatch):
    monkeypatch.setenv("FAKE_SIDECAR_FAIL", "1")
    with pytest.raises(cairn.SidecarError, match="exited with status 3 before it was ready: cannot reach the coordinator at chief:1"):
        cairn.CheckpointManager("chief:1", run_id="r", rank=0, world_size=1, handle_sigterm=False)


def test_cairn_jar_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("CAIRN_JAR", str(tmp_path / "missing.jar"))
    with pytest.raises(cairn.SidecarError, match="CAIRN_JAR=.*missing.jar is not a file"):
        find_command()
