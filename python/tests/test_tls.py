"""TLS end to end: a real coordinator serving mutual TLS (``--tls-cert/--tls-key/--tls-client-ca``)
and the package's ``tls_ca``/``tls_cert``/``tls_key`` passed to the sidecar it starts. The
certificates are made by the test with the ``openssl`` command (skipped, with the reason shown,
when it or the jar is missing)."""

import os
import shutil
import subprocess

import pytest

import cairn

import real_cluster
from real_cluster import JAR

OPENSSL = shutil.which("openssl")
pytestmark = [
    pytest.mark.skipif(bool(real_cluster.unavailable()), reason=real_cluster.unavailable() or "available"),
    pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed (apt-get install openssl)"),
]


def _openssl(*args, cwd):
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _signed(d, name, ca, extensions):
    """An EC P-256 key (PKCS#8 PEM) and a certificate for it signed by ``ca``."""
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=d)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr", cwd=d)
    (d / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
    return d / f"{name}.pem", d / f"{name}.key"


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
             "-subj", "/CN=cairn-test-ca", "-days", "2", "-out", "ca.pem", cwd=d)
    server = _signed(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    client = _signed(d, "client", "ca", "extendedKeyUsage=clientAuth\n")
    return d / "ca.pem", server, client


def test_a_trainer_saves_and_restores_through_a_mutual_tls_coordinator(tmp_path, pki):
    ca, (server_cert, server_key), (client_cert, client_key) = pki
    os.environ["CAIRN_JAR"] = str(JAR)
    with real_cluster.coordinator(tmp_path, 1, "tls-run", "--tls-cert", str(server_cert), "--tls-key", str(server_key),
                                  "--tls-client-ca", str(ca)) as (address, storage):
        with cairn.CheckpointManager(address, run_id="tls-run", rank=0, world_size=1, handle_sigterm=False,
                                     tls_ca=ca, tls_cert=client_cert, tls_key=client_key) as mgr:
            assert mgr.save(3, {"w": [1.5, 2.5], "step": 3}).result(60) == 3
        with cairn.CheckpointManager(address, run_id="tls-run", rank=0, world_size=1, handle_sigterm=False,
                                     tls_ca=ca, tls_cert=client_cert, tls_key=client_key) as mgr:
            state = {"w": [0.0, 0.0], "step": 0}
            assert mgr.restore_latest(state) == 3
            assert state == {"w": [1.5, 2.5], "step": 3}
        assert (storage / "manifests").is_dir()


def test_a_sidecar_without_a_client_certificate_is_refused_with_a_clear_error(tmp_path, pki):
    ca, (server_cert, server_key), _ = pki
    os.environ["CAIRN_JAR"] = str(JAR)
    with real_cluster.coordinator(tmp_path, 1, "tls-run", "--tls-cert", str(server_cert), "--tls-key", str(server_key),
                                  "--tls-client-ca", str(ca)) as (address, storage):
        with pytest.raises(cairn.SidecarError) as refused:
            cairn.CheckpointManager(address, run_id="tls-run", rank=0, world_size=1, handle_sigterm=False, tls_ca=ca)
        # one line naming the sidecar, the coordinator and the TLS failure, not a 30 s connect timeout
        assert "could not join coordinator" in str(refused.value)
        assert "bad_certificate" in str(refused.value) or "ssl" in str(refused.value).lower()
        assert not (storage / "manifests").exists() or not any((storage / "manifests").iterdir())
