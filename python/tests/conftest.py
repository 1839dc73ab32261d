import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from fake_sidecar import FakeSidecar  # noqa: E402

SHM = "/dev/shm"


def _shm_files():
    return {n for n in os.listdir(SHM) if n.startswith("cairn-")} if os.path.isdir(SHM) else set()


@pytest.fixture(scope="session", autouse=True)
def no_shared_staging_file_outlives_the_suite():
    """A sidecar's staging file is tmpfs memory until it is deleted: tests kill sidecars, and a
    file left by each run once filled the machine's memory. None created by the suite may remain."""
    before = _shm_files()
    yield
    left = sorted(_shm_files() - before)
    assert not left, f"shared staging files left in {SHM}: {left}"


@pytest.fixture
def fake(tmp_path):
    sidecar = FakeSidecar(str(tmp_path / "agent.sock"), run_id="run", rank=0, world_size=1)
    yield sidecar
    sidecar.cleanup()


@pytest.fixture
def manager(fake):
    import cairn

    mgr = cairn.CheckpointManager("127.0.0.1:7400", run_id="run", rank=0, world_size=1,
                                  sidecar=fake.socket_path, handle_sigterm=False)
    yield mgr
    if fake.thread.is_alive():
        fake.release()
    mgr.close()
