"""Resharded restore, the client's logic, against the protocol double (tests/fake_sidecar.py): which
leaves take the fast path (restore_read) and which a box (restore_region), how a box is split to fit
the shared memory, copies into any target, and the one-line errors. test_reshard_real.py runs the
same against real sidecars and a real coordinator."""

import pytest

import cairn
from cairn._reshard import split_region

np = pytest.importorskip("numpy")

STEP = 4


def _global(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture
def small_fake(tmp_path):
    from fake_sidecar import FakeSidecar

    sidecar = FakeSidecar(str(tmp_path / "small.sock"), shm_bytes=4096)
    yield sidecar
    sidecar.cleanup()


def _attach(fake):
    return cairn.CheckpointManager("127.0.0.1:7400", run_id="run", rank=0, world_size=1, sidecar=fake.socket_path,
                                   handle_sigterm=False)


def test_split_region_tiles_the_box_in_parts_that_fit():
    assert list(split_region((10, 4), 4, 1 << 20)) == [((0, 0), (10, 4))]
    assert list(split_region((10, 4), 4, 48)) == [((0, 0), (3, 4)), ((3, 0), (3, 4)), ((6, 0), (3, 4)), ((9, 0), (1, 4))]
    # a row larger than the cap: one row at a time, split along the next dimension
    assert list(split_region((2, 5), 8, 16)) == [((0, 0), (1, 2)), ((0, 2), (1, 2)), ((0, 4), (1, 1)),
                                                  ((1, 0), (1, 2)), ((1, 2), (1, 2)), ((1, 4), (1, 1))]
    assert list(split_region((0, 5), 8, 16)) == []
    assert list(split_region((), 8, 16)) == [((), ())]
    for shape, cap in (((7, 3, 5), 40), ((13,), 8), ((3, 1, 9), 20)):
        covered = np.zeros(shape, int)
        for start, size in split_region(shape, 4, cap):
            assert int(np.prod(size)) * 4 <= cap
            covered[tuple(slice(s, s + n) for s, n in zip(start, size))] += 1
        assert (covered == 1).all()
    with pytest.raises(ValueError, match="an element of 16 bytes does not fit in 8 bytes"):
        list(split_region((2,), 16, 8))


def test_a_shard_of_another_layout_is_filled_from_its_box(fake, manager):
    full = _global((37, 24))
    fake.put_global(STEP, "model/emb", "float32", full)
    rows = cairn.Shard(np.zeros((9, 24), np.float32), (37, 24), (10, 0))
    cols = cairn.Shard(np.zeros((37, 5), np.float32), (37, 24), (0, 19))
    state = {"model": {"emb": rows}, "other": {"model": {"emb": cols}}}
    with pytest.raises(cairn.RestoreError, match="entry 'other/model/emb' is not in checkpoint"):
        manager.restore_latest(state)
    assert manager.restore_latest({"model": {"emb": rows}}) == STEP
    assert (rows.tensor == full[10:19]).all()
    assert fake.region_requests == [("model/emb", [10, 0], [9, 24])]
    stats = manager.last_restore_stats
    assert (stats.step, stats.bytes_read, stats.regions, stats.whole_entries) == (STEP, 9 * 24 * 4, 1, 0)
    assert stats.by_entry == {"model/emb": 9 * 24 * 4}
    fake.put_global(STEP, "other/model/emb", "float32", full)
    manager.restore_latest(state)
    assert (cols.tensor == full[:, 19:]).all()


def test_a_plain_leaf_of_a_tensor_saved_in_pieces_is_restored_whole_or_refused(fake, manager):
    full = _global((6, 4), "float64")
    fake.put_global(STEP, "w", "float64", full)
    target = {"w": np.zeros((6, 4))}
    manager.restore_latest(target)
    assert (target["w"] == full).all()
    with pytest.raises(cairn.RestoreError, match=r"^entry 'w': checkpoint has float64\[6, 4\] saved in pieces, state has "
                                                 r"float64\[3, 4\]; restore a piece of it with cairn.Shard"):
        manager.restore_latest({"w": np.zeros((3, 4))})


def test_the_piece_this_rank_saved_takes_the_fast_path(fake, manager):
    piece = _global((4, 3))
    manager.save(1, {"w": cairn.Shard(piece, (8, 3), (4, 0))}).result(10)
    same = cairn.Shard(np.zeros((4, 3), np.float32), (8, 3), (4, 0))
    assert manager.restore_latest({"w": same}) == 1
    assert (same.tensor == piece).all() and fake.region_requests == []
    assert manager.last_restore_stats.whole_entries == 1 and manager.last_restore_stats.regions == 0
    # a box inside the saved piece, but not the piece: a region read
    inner = cairn.Shard(np.zeros((2, 3), np.float32), (8, 3), (5, 0))
    manager.restore_latest({"w": inner})
    assert (inner.tensor == piece[1:3]).all() and fake.region_requests == [("w", [5, 0], [2, 3])]
    # rows this rank did not save: the sidecar's one line, as a RestoreError naming the entry
    outside = cairn.Shard(np.zeros((2, 3), np.float32), (8, 3), (0, 0))
    with pytest.raises(cairn.RestoreError, match=r"^entry 'w': bytes of region \[0, 0\] \+ \[2, 3\] are stored by no piece$"):
        manager.restore_latest({"w": outside})


def test_unsharded_and_replicated_entries_serve_shards_and_restore_as_today(fake, manager):
    w = _global((10, 2), seed=3)
    manager.save(2, {"w": w, "r": cairn.replicated(np.arange(6.0))}).result(10)
    piece = cairn.Shard(np.zeros((3, 2), np.float32), (10, 2), (7, 0))
    rep = cairn.Shard(np.zeros(2), (6,), (4,))
    whole = {"w": np.zeros((10, 2), np.float32), "r": np.zeros(6)}
    manager.restore_latest({"w": piece, "r": rep})
    assert (piece.tensor == w[7:]).all() and rep.tensor.tolist() == [4.0, 5.0]
    fake.region_requests.clear()
    manager.restore_latest(whole)
    assert (whole["w"] == w).all() and whole["r"].tolist() == list(range(6)) and fake.region_requests == []


def test_torch_targets_bfloat16_and_non_contiguous_views(fake, manager):
    torch = pytest.importorskip("torch")
    full = torch.randn(12, 10, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    fake.put_global(STEP, "half", "bfloat16", full.view(torch.int16).numpy().copy())
    fake.put_global(STEP, "f", "float32", _global((8, 6), seed=2))
    half = torch.zeros(4, 5, dtype=torch.bfloat16)
    backing = torch.zeros(6, 8)
    transposed = backing.t()  # (8, 6), not contiguous
    np_backing = np.zeros((16, 6), np.float32)
    strided = np_backing[::2]  # every other row
    manager.restore_latest({"half": cairn.Shard(half, (12, 10), (3, 5)), "f": cairn.Shard(transposed, (8, 6), (0, 0))})
    assert torch.equal(half, full[3:7, 5:10])
    assert torch.equal(backing.t(), torch.from_numpy(fake.global_tensors[STEP]["f"][1]))
    manager.restore_latest({"f": cairn.Shard(strided, (8, 6), (0, 0))})
    assert (np_backing[::2] == fake.global_tensors[STEP]["f"][1]).all() and (np_backing[1::2] == 0).all()


def test_a_read_only_array_in_a_shard_is_replaced_inside_the_shard(fake, manager):
    full = _global((5, 3), "float64")
    fake.put_global(STEP, "w", "float64", full)
    frozen = np.zeros((2, 3))
    frozen.flags.writeable = False
    shard = cairn.Shard(frozen, (5, 3), (3, 0))
    state = {"w": shard}
    manager.restore_latest(state)
    assert state["w"] is shard and shard.tensor is not frozen and (shard.tensor == full[3:]).all()
    assert (frozen == 0).all()


def test_a_region_larger_than_the_shared_memory_is_read_in_parts(small_fake):
    full = _global((100, 30), "float64", seed=5)  # 24,000 bytes through 4 KiB of shared memory
    small_fake.put_global(STEP, "big", "float64", full)
    small_fake.put_global(STEP, "wide", "float64", _global((3, 700), "float64", seed=6))  # one row: 5,600 bytes
    with _attach(small_fake) as mgr:
        big = cairn.Shard(np.zeros((90, 30)), (100, 30), (7, 0))
        wide = np.zeros((3, 700))
        mgr.restore_latest({"big": big, "wide": cairn.Shard(wide, (3, 700), (0, 0))})
        assert (big.tensor == full[7:97]).all() and (wide == small_fake.global_tensors[STEP]["wide"][1]).all()
        for name, offsets, shape in small_fake.region_requests:
            assert int(np.prod(shape)) * 8 <= 4096, (name, shape)
        assert [r[1][0] for r in small_fake.region_requests if r[0] == "big"] == [7, 24, 41, 58, 75, 92]
        assert mgr.last_restore_stats.bytes_read == 90 * 30 * 8 + 3 * 700 * 8


def test_mismatches_are_one_line_errors_naming_the_entry(fake, manager):
    fake.put_global(STEP, "w", "float32", _global((8, 4)))

    def restore(leaf):
        return manager.restore_latest({"w": leaf})

    with pytest.raises(cairn.RestoreError, match=r"^entry 'w': checkpoint has float32\[8, 4\], state's cairn.Shard has "
                                                 r"global shape \[8, 5\]$"):
        restore(cairn.Shard(np.zeros((2, 5), np.float32), (8, 5), (0, 0)))
    with pytest.raises(cairn.RestoreError, match=r"^entry 'w': checkpoint has float32\[8, 4\], state has float64\[2, 4\] "
                                                 r"at \[2, 0\] of \[8, 4\]$"):
        restore(cairn.Shard(np.zeros((2, 4)), (8, 4), (2, 0)))
    with pytest.raises(cairn.RestoreError, match=r"^entry 'gone' is not in checkpoint step 4 \(pass partial=True"):
        manager.restore_latest({"gone": cairn.Shard(np.zeros(2), (4,), (0,))})
    kept = np.ones(2)
    assert manager.restore_latest({"gone": cairn.Shard(kept, (4,), (0,))}, partial=True) == STEP
    assert kept.tolist() == [1, 1]
    fake.uncovered = True
    with pytest.raises(cairn.RestoreError, match=r"^entry 'w': bytes of region \[6, 0\] \+ \[2, 4\] are stored by no piece$"):
        restore(cairn.Shard(np.zeros((2, 4), np.float32), (8, 4), (6, 0)))
    with pytest.raises(ValueError, match="offset 7 \\+ size 2 lies outside global size 8"):
        cairn.Shard(np.zeros((2, 4), np.float32), (8, 4), (7, 0))


def test_an_empty_piece_asks_for_nothing(fake, manager):
    fake.put_global(STEP, "tiny", "int64", np.arange(15).reshape(3, 5))
    empty = cairn.Shard(np.zeros((0, 5), np.int64), (3, 5), (3, 0))
    assert manager.restore_latest({"tiny": empty}) == STEP
    assert fake.region_requests == [] and manager.last_restore_stats.bytes_read == 0


def test_a_sidecar_without_restore_region_says_so(fake, manager):
    manager.save(1, {"w": cairn.Shard(np.ones(2), (4,), (0,))}).result(10)
    handle = fake._handle

    def old_sidecar(request):
        reply = handle(request)
        if request["op"] == "restore_open" and reply.get("ok"):
            reply.pop("tensors", None)
        return reply

    fake._handle = old_sidecar
    with pytest.raises(cairn.RestoreError, match="^entry 'w': the checkpoint holds another layout of it and this sidecar "
                                                 "cannot read regions"):
        manager.restore_latest({"w": cairn.Shard(np.ones(2), (4,), (2,))})
    target = cairn.Shard(np.zeros(2), (4,), (0,))
    manager.restore_latest({"w": target})
    assert target.tensor.tolist() == [1, 1]
