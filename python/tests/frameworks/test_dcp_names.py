"""cairn.torch.dcp without processes: the checkpoint_id -> step rule, and entry names <-> DCP keys."""

from pathlib import PurePosixPath

import pytest

from support import require

require("torch")

import cairn  # noqa: E402
from cairn.torch import dcp as cdcp  # noqa: E402


@pytest.mark.parametrize("checkpoint_id, step", [
    (0, 0), (100, 100), ("100", 100), ("step-100", 100), ("/ckpt/run-7/step-100", 100),
    ("/ckpt/step-100/", 100), (PurePosixPath("/ckpt/step_0042"), 42), ("s3://bucket/run/step-7", 7),
])
def test_a_checkpoint_id_names_the_step_its_last_component_ends_with(checkpoint_id, step):
    assert cdcp.step_of(checkpoint_id) == step
    assert cdcp.CairnStorageWriter.validate_checkpoint_id(checkpoint_id)
    assert cdcp.CairnStorageReader.validate_checkpoint_id(checkpoint_id)


@pytest.mark.parametrize("checkpoint_id", ["latest", "/ckpt/step-100/model", "", -1, True, 1.5, None])
def test_a_checkpoint_id_without_a_step_is_refused(checkpoint_id):
    with pytest.raises(cdcp.CheckpointIdError) as e:
        cdcp.step_of(checkpoint_id)
    assert isinstance(e.value, cairn.CairnError) and isinstance(e.value, ValueError)
    assert not cdcp.CairnStorageWriter.validate_checkpoint_id(checkpoint_id)


@pytest.mark.parametrize("path", [
    ("model", "layers.0.weight"), ("optim", "state", "0.weight", "exp_avg"), ("a/b", "100%", "."), ("", "x"),
])
def test_entry_names_keep_dcp_key_paths_and_map_back_to_dcp_keys(path):
    name = cdcp.entry_name(path)
    assert len(name.split("/")) == len(path)  # a key's dots and slashes stay inside its segment
    fqn, back = cdcp.fqn_of(name)
    assert back == path and fqn == ".".join(path)
