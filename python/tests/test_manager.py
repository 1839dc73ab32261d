"""CheckpointManager against the protocol test double (tests/fake_sidecar.py)."""

import os
import signal
import sys
import time

import pytest

import cairn


def test_save_then_restore_numpy_state_in_place(fake, manager):
    np = pytest.importorskip("numpy")
    state = {"w": np.arange(12, dtype=np.float32).reshape(4, 3), "b": np.array([True, False]), "epoch": 3,
             "tag": "x", "empty": np.zeros((0, 5))}
    future = manager.save(7, state, metadata={"loss": 0.25, "epoch": 3})
    assert future.result(timeout=10) == 7
    assert fake.committed[7]["metadata"] == {"loss": 0.25, "epoch": 3}
    entries = {n: meta for n, (meta, _) in fake.committed[7]["entries"].items()}
    assert entries["w"]["dtype"] == "float32" and entries["w"]["shape"] == [4, 3]
    assert all(meta["offset"] % 64 == 0 for meta in entries.values())
    assert fake.committed[7]["entries"]["w"][1] == np.arange(12, dtype="<f4").tobytes()

    target = {"w": np.zeros((4, 3), np.float32), "b": np.zeros(2, bool), "epoch": 0, "tag": "", "empty": np.ones((0, 5))}
    w = target["w"]
    assert manager.restore_latest(target) == 7
    assert target["w"] is w and (w == state["w"]).all()
    assert target["b"].tolist() == [True, False] and target["epoch"] == 3 and target["tag"] == "x"
    assert manager.latest_step() == 7 and manager.all_steps() == [7]


def test_restore_without_a_checkpoint_is_none(manager):
    assert manager.restore_latest({"x": 1}) is None


def test_mirrored_and_replicated_marks_reach_the_entries(fake):
    np = pytest.importorskip("numpy")
    with cairn.CheckpointManager("h:1", run_id="run", rank=0, world_size=1, sidecar=fake.socket_path,
                                 mirrored=True, handle_sigterm=False) as mgr:
        mgr.save(1, {"a": np.zeros(2), "s": cairn.Shard(np.zeros(2), (4,), (2,))}).result(10)
    got = {n: meta["replicated"] for n, (meta, _) in fake.committed[1]["entries"].items()}
    assert got == {"a": True, "s": False}


def test_dtype_or_shape_mismatch_is_one_line_naming_the_entry(manager):
    np = pytest.importorskip("numpy")
    manager.save(1, {"model": {"w": np.zeros((4, 3), np.float32)}}).result(10)
    with pytest.raises(cairn.RestoreError, match=r"^entry 'model/w': checkpoint has float32\[4, 3\], state has float64\[4, 3\]$"):
        manager.restore_latest({"model": {"w": np.zeros((4, 3))}})
    with pytest.raises(cairn.RestoreError, match=r"state has float32\[3, 4\]"):
        manager.restore_latest({"model": {"w": np.zeros((3, 4), np.float32)}})


def test_missing_entry_is_an_error_unless_partial(manager):
    np = pytest.importorskip("numpy")
    manager.save(1, {"w": np.ones(3)}).result(10)
    target = {"w": np.zeros(3), "new": np.zeros(2)}
    with pytest.raises(cairn.RestoreError, match="entry 'new' is not in checkpoint step 1 \\(pass partial=True"):
        manager.restore_latest(target)
    assert manager.restore_latest(target, partial=True) == 1
    assert target["w"].tolist() == [1, 1, 1] and target["new"].tolist() == [0, 0]


def test_torch_module_optimizer_and_generators_round_trip(manager):
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")

    def make():
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return {"model": model, "opt": opt, "sched": sched, "gen": torch.Generator().manual_seed(5),
                "np_rng": np.random.default_rng(9), "half": torch.ones(2, dtype=torch.bfloat16) * 1.5}

    source = make()
    for _ in range(3):
        source["opt"].zero_grad()
        source["model"](torch.randn(8, 3, generator=source["gen"])).pow(2).mean().backward()
        source["opt"].step()
        source["sched"].step()
    source["np_rng"].random(5)
    manager.save(3, source).result(10)

    target = make()
    assert manager.restore_latest(target) == 3
    for a, b in zip(source["model"].parameters(), target["model"].parameters()):
        assert torch.equal(a, b)
    sa, sb = source["opt"].state_dict(), target["opt"].state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for k in sa["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa["state"][k][name], sb["state"][k][name])
    assert target["sched"].state_dict() == source["sched"].state_dict()
    assert torch.equal(torch.randn(4, generator=source["gen"]), torch.randn(4, generator=target["gen"]))
    assert source["np_rng"].random() == target["np_rng"].random()
    assert target["half"].dtype == torch.bfloat16 and target["half"].tolist() == [1.5, 1.5]


def test_a_module_of_another_shape_fails_naming_the_tensor(manager):
    torch = pytest.importorskip("torch")
    manager.save(1, {"model": torch.nn.Linear(3, 2)}).result(10)
    with pytest.raises(cairn.RestoreError, match=r"entry 'model/weight': checkpoint has float32\[2, 3\], state has float32\[5, 3\]"):
        manager.restore_latest({"model": torch.nn.Linear(3, 5)})


def test_save_raises_at_once_on_an_unsupported_leaf_and_sends_nothing(fake, manager):
    before = len(fake.requests)
    with pytest.raises(cairn.UnsupportedLeaf, match="entry 'bad'"):
        manager.save(1, {"ok": 1, "bad": object()})
    with pytest.raises(TypeError, match="metadata 'loss'"):
        manager.save(1, {"ok": 1}, metadata={"loss": float("nan")})
    with pytest.raises(ValueError, match="step must be an int >= 0"):
        manager.save(-1, {"ok": 1})
    assert len(fake.requests) == before


def test_an_aborted_save_fails_its_future_with_the_reason(fake, manager):
    fake.abort_reason = "BARRIER_TIMEOUT"
    future = manager.save(2, {"x": 1})
    with pytest.raises(cairn.SaveAborted) as aborted:
        future.result(10)
    assert aborted.value.reason == "BARRIER_TIMEOUT"


def test_a_commit_the_sidecar_refuses_fails_the_future_with_its_error_and_aborts_the_save(fake, manager):
    # save() does not wait for the commit's answer (the stall ends with the copy): a refusal
    # arrives through the Future, and the client aborts the save so the region and the barrier are freed
    fake.refuse_commits = "entry 'x': name breaks the rules"
    fake.hold_waits = True
    future = manager.save(3, {"x": 1})
    with pytest.raises(cairn.SidecarError, match="entry 'x': name breaks the rules") as refused:
        future.result(10)
    assert refused.value.type == "BadRequest"
    deadline = time.monotonic() + 10
    while not any(r["op"] == "abort_save" and r["step"] == 3 for r in fake.requests):
        assert time.monotonic() < deadline, "no abort_save after the refused commit"
        time.sleep(0.01)
    fake.refuse_commits = None
    fake.release()


def test_busy_staging_fails_the_future_not_the_training_loop(fake, manager):
    np = pytest.importorskip("numpy")
    future = manager.save(1, {"big": np.zeros(fake.shm_bytes)})
    with pytest.raises(cairn.StagingBusy):
        future.result(10)


def test_when_the_sidecar_dies_pending_and_next_saves_fail_and_training_goes_on(fake, manager):
    fake.hold_waits = True
    pending = manager.save(1, {"x": 1})
    assert not pending.done()
    fake.kill()
    with pytest.raises(cairn.SidecarError, match=f"cairn sidecar at {fake.socket_path}"):
        pending.result(10)
    assert not manager.sidecar_alive
    assert manager.save_due(2) is False
    with pytest.raises(cairn.SidecarError, match="call reconnect"):
        manager.save(2, {"x": 1}).result(10)
    manager.wait_until_finished()


def test_wait_until_finished_waits_for_held_saves(fake, manager):
    fake.hold_waits = True
    futures = [manager.save(s, {"x": s}) for s in (1, 2)]
    assert not any(f.done() for f in futures)
    fake.release()
    manager.wait_until_finished()
    assert [f.result(0) for f in futures] == [1, 2]


@pytest.mark.skipif(sys.platform != "linux", reason="signals")
def test_sigterm_asks_for_an_emergency_save_at_the_next_save_due(fake):
    chained = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: chained.append(s))
    try:
        mgr = cairn.CheckpointManager("h:1", run_id="run", rank=0, world_size=1, sidecar=fake.socket_path)
        assert mgr.save_due(1) is False
        os.kill(os.getpid(), signal.SIGTERM)
        assert mgr.save_due(2) is True and mgr.preempted
        assert chained == [signal.SIGTERM]
        assert [r["step"] for r in fake.requests if r["op"] == "preempt"] == [2]
        mgr.close()
        assert signal.getsignal(signal.SIGTERM) is not None and not hasattr(signal.getsignal(signal.SIGTERM), "__self__")
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_attaching_to_a_sidecar_of_another_run_is_refused(fake):
    with pytest.raises(cairn.CairnError, match="serves run 'run' rank 0 of 1, not run 'other' rank 0 of 1"):
        cairn.CheckpointManager("h:1", run_id="other", rank=0, world_size=1, sidecar=fake.socket_path,
                                handle_sigterm=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"address": "nohost"}, "address must be 'host:port'"),
    ({"rank": 3}, r"rank must be an int in \[0, 2\)"),
    ({"world_size": 0}, "world_size must be an int >= 1"),
    ({"run_id": ""}, "run_id must be a non-empty str"),
    ({"staging_mib": 0}, "staging_mib must be an int >= 1"),
])
def test_bad_arguments_are_refused_before_anything_starts(kwargs, message):
    args = {"address": "h:1", "run_id": "r", "rank": 0, "world_size": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        cairn.CheckpointManager(**args)


def _inject(fake, step, arrays):
    entries = {}
    for name, arr in arrays.items():
        meta = {"name": name, "offset": 0, "length": arr.nbytes, "dtype": arr.dtype.name, "shape": list(arr.shape),
                "replicated": False}
        entries[name] = (meta, arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    fake.committed[step] = {"entries": entries, "metadata": {}}


def test_restore_reads_in_batches_that_fit_the_shared_memory(tmp_path):
    np = pytest.importorskip("numpy")
    from fake_sidecar import FakeSidecar

    fake = FakeSidecar(str(tmp_path / "s.sock"), run_id="run", shm_bytes=4096)
    try:
        arrays = {f"a{i}": np.full(375, i, np.float64) for i in range(4)}  # 3000 bytes each
        _inject(fake, 5, arrays)
        with cairn.CheckpointManager("h:1", run_id="run", rank=0, world_size=1, sidecar=fake.socket_path,
                                     handle_sigterm=False) as mgr:
            target = {name: np.zeros(375) for name in arrays}
            assert mgr.restore_latest(target) == 5
            assert all((target[f"a{i}"] == i).all() for i in range(4))
            reads = [r["names"] for r in fake.requests if r["op"] == "restore_read"]
            assert reads == [["a0"], ["a1"], ["a2"], ["a3"]]
            _inject(fake, 6, {"big": np.zeros(1000)})
            with pytest.raises(cairn.RestoreError, match="entry 'big' holds 8000 bytes, more than the sidecar's shared memory"):
                mgr.restore_latest({"big": np.zeros(1000)})
            assert fake.requests[-1]["op"] == "restore_close"
    finally:
        fake.cleanup()


def test_python_random_state_round_trips(manager):
    import random

    rng = random.Random(3)
    rng.random()
    manager.save(1, {"py": rng}).result(10)
    other = random.Random(0)
    manager.restore_latest({"py": other})
    assert other.random() == rng.random()


def test_a_state_larger_than_the_shared_memory_fails_its_future_naming_the_size(fake, manager):
    np = pytest.importorskip("numpy")
    future = manager.save(1, {"w": np.zeros((2 << 20) // 8)})
    with pytest.raises(cairn.StagingBusy, match=r"needs 2097152 bytes of staging, .* holds 1048576; use staging_mib >= 2"):
        future.result(5)
    assert fake.committed == {}
