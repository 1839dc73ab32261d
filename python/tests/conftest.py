import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from fake_sidecar import FakeSidecar  # noqa: E402


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
