import socket
import struct
import threading

import pytest

import cairn
from cairn._framing import MAX_FRAME, Connection, encode_frame, read_frame


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield a, b
    a.close()
    b.close()


def test_a_frame_is_a_big_endian_length_then_utf8_json(pair):
    frame = encode_frame({"id": 1, "op": "hello", "name": "é"})
    body = '{"id":1,"op":"hello","name":"é"}'.encode("utf-8")
    assert frame == struct.pack(">I", len(body)) + body
    a, b = pair
    a.sendall(frame + encode_frame({"id": 2}))
    assert read_frame(b) == {"id": 1, "op": "hello", "name": "é"}
    assert read_frame(b) == {"id": 2}


def test_eof_at_a_boundary_is_none_and_mid_frame_is_an_error(pair):
    a, b = pair
    a.sendall(struct.pack(">I", 10) + b'{"id"')
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(EOFError):
        read_frame(b)
    assert read_frame(b) is None


@pytest.mark.parametrize("header, body, message", [
    (struct.pack(">I", 0), b"", "frame length 0"),
    (struct.pack(">I", MAX_FRAME + 1), b"", "frame length 16777217"),
    (struct.pack(">I", 2), b"[]", "JSON list, not an object"),
])
def test_malformed_frames_are_refused(pair, header, body, message):
    a, b = pair
    a.sendall(header + body)
    with pytest.raises(ValueError, match=message):
        read_frame(b)


def test_nan_cannot_be_sent():
    with pytest.raises(ValueError):
        encode_frame({"x": float("nan")})


def _serve(sock, handler):
    def run():
        while True:
            try:
                request = read_frame(sock)
            except OSError:
                return
            if request is None:
                return
            handler(sock, request)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_responses_are_matched_by_id_even_out_of_order(pair):
    a, b = pair
    held = []

    def handler(sock, request):
        if request["op"] == "wait_save":
            held.append(request)
        else:
            sock.sendall(encode_frame({"id": request["id"], "ok": True, "echo": request["op"]}))
            for r in held:
                sock.sendall(encode_frame({"id": r["id"], "ok": True, "step": r["step"]}))
            held.clear()

    _serve(b, handler)
    conn = Connection(a, "test-peer")
    waiting = conn.request("wait_save", step=5)
    assert conn.call("latest_step", timeout=5) == {"id": 2, "ok": True, "echo": "latest_step"}
    assert waiting.result(timeout=5)["step"] == 5
    conn.close()


def test_error_responses_become_typed_exceptions(pair):
    a, b = pair
    errors = {
        "wait_save": {"type": "SaveAborted", "message": "barrier timed out", "reason": "BARRIER_TIMEOUT"},
        "begin_save": {"type": "Busy", "message": "staging full"},
        "restore_open": {"type": "Corrupt", "message": "shard s3://b/x CRC mismatch"},
        "hello": {"type": "BadRequest", "message": "version 7 unknown"},
    }
    _serve(b, lambda sock, r: sock.sendall(encode_frame({"id": r["id"], "ok": False, "error": errors[r["op"]]})))
    conn = Connection(a, "peer")
    with pytest.raises(cairn.SaveAborted, match="cairn sidecar wait_save: barrier timed out") as aborted:
        conn.call("wait_save", timeout=5, step=1)
    assert aborted.value.reason == "BARRIER_TIMEOUT"
    with pytest.raises(cairn.StagingBusy):
        conn.call("begin_save", timeout=5)
    with pytest.raises(cairn.CorruptCheckpoint, match="s3://b/x"):
        conn.call("restore_open", timeout=5)
    with pytest.raises(cairn.SidecarError, match="version 7 unknown") as bad:
        conn.call("hello", timeout=5)
    assert bad.value.type == "BadRequest"
    conn.close()


def test_when_the_peer_dies_pending_and_later_requests_fail_naming_it(pair):
    a, b = pair
    got = threading.Event()
    _serve(b, lambda sock, r: got.set())
    conn = Connection(a, "/run/cairn/agent.sock")
    pending = conn.request("wait_save", step=3)
    assert got.wait(5)
    b.shutdown(socket.SHUT_RDWR)
    with pytest.raises(cairn.SidecarError, match="cairn sidecar at /run/cairn/agent.sock: the sidecar closed"):
        pending.result(timeout=5)
    assert not conn.alive
    with pytest.raises(cairn.SidecarError, match="/run/cairn/agent.sock"):
        conn.call("latest_step", timeout=5)
    conn.close()


def test_a_response_with_an_unknown_id_is_a_protocol_violation(pair):
    a, b = pair
    conn = Connection(a, "peer")
    pending = conn.request("latest_step")
    b.sendall(encode_frame({"id": 99, "ok": True}))
    with pytest.raises(cairn.SidecarError, match="protocol violation from the sidecar \\(response with unknown id 99\\)"):
        pending.result(timeout=5)
    conn.close()


def test_connecting_to_a_missing_socket_names_it(tmp_path):
    path = str(tmp_path / "nope.sock")
    with pytest.raises(cairn.SidecarError, match=f"cannot connect to the cairn sidecar at {path}"):
        Connection.connect(path)


def test_a_sidecar_that_does_not_answer_in_time_is_treated_as_dead(pair):
    a, b = pair
    _serve(b, lambda sock, r: None)  # reads, never answers
    conn = Connection(a, "/run/agent.sock")
    pending = conn.request("wait_save", step=1)
    with pytest.raises(cairn.SidecarError, match="cairn sidecar at /run/agent.sock: no answer to save_due in 0.2 s"):
        conn.call("save_due", timeout=0.2, step=1)
    assert not conn.alive
    with pytest.raises(cairn.SidecarError, match="no answer to save_due"):
        pending.result(1)
    conn.close()
