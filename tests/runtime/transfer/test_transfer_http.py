"""Transfer engine over HTTP: happy paths and every injected fault."""

from __future__ import annotations

import dataclasses
import json
import os
import time

import pytest

from packager.runtime.manifest import Digest, Manifest, ManifestError, parse
from packager.runtime.transfer import TransferFailed, UnsafeDestination, fetch
from tests.fixtures.range_server import RangeServer

from .conftest import FAST, KiB, MiB, hf_entry, hf_path, payload


def run(hub, dest, **kw):
    kw.setdefault("settings", FAST)
    return fetch(hub.manifest(), str(dest), env=kw.pop("env", hub.env), **kw)


def test_parallel_ranged_fetch_all_algorithms(hub, tmp_path):
    big = hub.add("model.safetensors", payload(3 * MiB, 1))
    hub.add("config.json", payload(700, 2), "git-sha1")
    hub.add("vocab.txt", payload(300 * KiB, 3), "md5")
    hub.add("small.crc", payload(90 * KiB, 4), "crc32c")
    hub.add("nohash.bin", payload(600 * KiB, 5), "none")
    hub.add("empty.txt", b"", "sha256")
    stats = tmp_path / "stats.json"
    result = run(hub, tmp_path / "out", stats_path=str(stats))

    hub.assert_placed(str(tmp_path / "out"))
    assert result.ok and result.bytes_total == sum(len(d) for d in hub.data.values())
    assert result.bytes_downloaded == result.bytes_total
    # 3 MiB in 256 KiB ranges, the first 4 (one per worker) ramping up 64/128/192/256 KiB so
    # they finish one by one: 14 ranged requests, each byte served once.
    assert hub.requests_for("model.safetensors") == 14
    assert hub.bytes_for("model.safetensors") == big.size
    by_name = {os.path.basename(f.destination): f for f in result.files}
    assert by_name["nohash.bin"].verification == "size-only"
    assert by_name["config.json"].verification == "git-sha1"
    assert by_name["small.crc"].verification == "crc32c"
    doc = json.loads(stats.read_text())
    assert doc["bytes_downloaded"] == result.bytes_downloaded and doc["cache_hits"] == 0
    assert {f["status"] for f in doc["files"]} == {"downloaded"} and len(doc["files"]) == 6
    # Nothing but the files and their verified markers is left beside them.
    leftovers = [n for n in os.listdir(tmp_path / "out" / "m") if n.startswith(".")]
    assert all(n.endswith(".pack-ok") for n in leftovers)


def test_bytes_ahead_of_the_hash_frontier_are_hashed_from_memory_not_read_back(hub, tmp_path):
    data = payload(3 * MiB, 1)
    hub.add("model.safetensors", data)
    # Throttled, so the four streams' ranges arrive interleaved: most bytes land ahead of the
    # frontier, and only the hash window decides whether they are kept or read back.
    hub.server.faults.rate = 2 * MiB
    kept = run(hub, tmp_path / "kept", stats_path=str(tmp_path / "stats.json"))
    hub.assert_placed(str(tmp_path / "kept"))
    assert kept.files[0].hashed_from_disk == 0
    assert json.loads((tmp_path / "stats.json").read_text())["files"][0]["hashed_from_disk"] == 0

    no_window = dataclasses.replace(FAST, hash_window_bytes=0)
    reread = run(hub, tmp_path / "reread", settings=no_window)
    hub.assert_placed(str(tmp_path / "reread"))
    # without a window, bytes written ahead of the frontier come back from the file (those a
    # stream writes right at the frontier are still hashed as they arrive)
    assert 0 < reread.files[0].hashed_from_disk < len(data)


def test_second_run_trusts_markers_and_makes_no_request(hub, tmp_path):
    hub.add("a.bin", payload(1 * MiB))
    run(hub, tmp_path)
    before = hub.server.counters.requests
    result = run(hub, tmp_path)
    assert hub.server.counters.requests == before
    assert [f.status for f in result.files] == ["present"]


def test_right_size_without_marker_is_not_trusted(hub, tmp_path):
    """Truss defect 9: a zero-filled file of the right size must not count as complete."""
    entry = hub.add("a.bin", payload(1 * MiB), "none")
    target = tmp_path / "m" / "a.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\0" * entry.size)
    result = run(hub, tmp_path)
    assert result.files[0].status == "downloaded"
    hub.assert_placed(str(tmp_path))


def test_existing_correct_file_is_verified_by_hash_not_refetched(hub, tmp_path):
    data = payload(1 * MiB)
    hub.add("a.bin", data)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.bin").write_bytes(data)
    result = run(hub, tmp_path)
    assert result.files[0].status == "present" and hub.server.counters.requests == 0


def test_corrupted_byte_is_detected_and_refetched(hub, tmp_path):
    hub.add("a.bin", payload(1 * MiB))
    hub.server.faults.corrupt = 1
    result = run(hub, tmp_path)
    hub.assert_placed(str(tmp_path))
    assert result.files[0].retries >= 1


def test_persistent_corruption_fails_clearly_and_exposes_nothing(hub, tmp_path):
    hub.add("a.bin", payload(512 * KiB))
    hub.add("ok.bin", payload(10 * KiB, 2))
    hub.server.faults.corrupt = -1
    with pytest.raises(TransferFailed) as info:
        run(hub, tmp_path)
    assert "sha256 mismatch" in str(info.value) and "a.bin" in str(info.value)
    assert "ok.bin" in str(info.value)  # every failed file is listed
    assert not (tmp_path / "m" / "a.bin").exists()
    assert len(info.value.failures) == 2


def test_truncated_response_is_resumed(hub, tmp_path):
    hub.add("a.bin", payload(2 * MiB))
    hub.server.faults.truncate = 3
    result = run(hub, tmp_path)
    hub.assert_placed(str(tmp_path))
    assert result.files[0].retries >= 3
    # A retry continues from the last byte received, not from the start of its range.
    assert hub.bytes_for("a.bin") == 2 * MiB


def test_503_burst_then_success(hub, tmp_path):
    hub.add("a.bin", payload(1 * MiB))
    hub.server.faults.fail_503 = 3
    result = run(hub, tmp_path)
    hub.assert_placed(str(tmp_path))
    assert result.files[0].retries == 3


def test_503_forever_gives_up_with_the_cause(hub, tmp_path):
    hub.add("a.bin", payload(10 * KiB))
    hub.server.faults.fail_503 = 1000
    with pytest.raises(TransferFailed) as info:
        run(hub, tmp_path)
    assert "HTTP 503" in str(info.value) and "gave up after 5 attempts" in str(info.value)


def test_stalled_connection_is_dropped_and_retried(hub, tmp_path):
    hub.add("a.bin", payload(1 * MiB))
    hub.server.faults.stall = (1, 5.0)
    t0 = time.monotonic()
    result = run(hub, tmp_path)
    assert time.monotonic() - t0 < 3.0  # stall_timeout is 0.5 s, the server stalls for 5 s
    hub.assert_placed(str(tmp_path))
    assert result.files[0].retries >= 1


def test_server_without_range_support_uses_one_streaming_get(hub, tmp_path):
    hub.add("a.bin", payload(2 * MiB))
    hub.add("b.bin", payload(100 * KiB, 2))
    hub.server.faults.ranges = False
    run(hub, tmp_path)
    hub.assert_placed(str(tmp_path))
    assert hub.requests_for("a.bin") == 1 and hub.bytes_for("a.bin") == 2 * MiB


def test_no_range_server_truncation_restarts_from_zero(hub, tmp_path):
    hub.add("a.bin", payload(1 * MiB))
    hub.server.faults.ranges = False
    hub.server.faults.truncate = 1
    run(hub, tmp_path)
    hub.assert_placed(str(tmp_path))
    assert hub.requests_for("a.bin") == 2


def test_wrong_credentials_fail_fast_without_retry(hub, tmp_path):
    hub.add("a.bin", payload(1 * MiB), secret="hf_access_token")
    hub.server.faults.token = "right"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "hf_access_token").write_text("wrong\n")
    t0 = time.monotonic()
    with pytest.raises(TransferFailed) as info:
        run(hub, tmp_path / "out", secrets_dir=str(secrets))
    assert time.monotonic() - t0 < 1.0
    assert hub.server.counters.requests == 1  # 401 is never retried
    message = str(info.value)
    assert "HTTP 401" in message and "hf_access_token" in message
    assert hub.server.counters.auth_seen == ["Bearer wrong"]
    (secrets / "hf_access_token").write_text("right\n")  # trailing newline stripped
    run(hub, tmp_path / "out", secrets_dir=str(secrets))
    hub.assert_placed(str(tmp_path / "out"))


def test_missing_file_404_fails_fast(hub, tmp_path):
    entry = hf_entry("missing.bin", payload(100))
    with pytest.raises(TransferFailed) as info:
        fetch(Manifest((entry,)), str(tmp_path), settings=FAST, env=hub.env)
    assert "HTTP 404" in str(info.value) and hub.server.counters.requests == 1


def test_token_goes_to_hub_host_only_and_is_dropped_on_cross_host_redirect(hub, tmp_path):
    data = payload(600 * KiB)
    hub.add("a.bin", data)
    with RangeServer({hf_path("a.bin"): data}) as cdn:
        hub.server.faults.redirect_to = cdn.base_url
        env = dict(hub.env, HF_TOKEN="tok")
        run(hub, tmp_path, env=env)
        hub.assert_placed(str(tmp_path))
        assert set(hub.server.counters.auth_seen) == {"Bearer tok"}
        assert set(cdn.counters.auth_seen) == {None}
        # Later ranges go straight to the remembered redirect target.
        assert hub.server.counters.requests < cdn.counters.requests


def test_placeholder_token_counts_as_missing(hub, tmp_path):
    hub.add("a.bin", payload(10 * KiB), secret="hf_access_token")
    env = dict(hub.env, TRUSS_SECRET_hf_access_token="***", HF_TOKEN=" real ")
    run(hub, tmp_path, env=env, secrets_dir=str(tmp_path / "none"))
    assert hub.server.counters.auth_seen == ["Bearer real"]


def test_dotdot_destination_is_refused_before_any_request(hub, tmp_path):
    entry = hub.add("a.bin", payload(10))
    bad = dataclasses.replace(entry, destination="/app/model_cache/m/../../../etc/passwd")
    doc = json.loads(Manifest((entry,)).to_json())
    doc["entries"][0]["destination"] = bad.destination
    with pytest.raises(ManifestError):
        parse(json.dumps(doc))
    with pytest.raises(UnsafeDestination):
        fetch(Manifest((bad,)), str(tmp_path), settings=FAST, env=hub.env)
    assert hub.server.counters.requests == 0


def test_symlinked_folder_leading_outside_the_root_is_refused(hub, tmp_path):
    hub.add("a.bin", payload(10))
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "root").mkdir()
    os.symlink(outside, tmp_path / "root" / "m")
    with pytest.raises(UnsafeDestination):
        run(hub, tmp_path / "root")
    assert not list(outside.iterdir())


def test_size_change_upstream_fails_without_retry(hub, tmp_path):
    entry = hub.add("a.bin", payload(100 * KiB))
    hub.entries[0] = dataclasses.replace(entry, size=entry.size + 1,
                                         hash=Digest("none", ""))
    with pytest.raises(TransferFailed) as info:
        run(hub, tmp_path)
    assert "manifest says" in str(info.value) and hub.server.counters.requests == 1


def test_same_content_at_two_destinations_is_fetched_once(hub, tmp_path):
    data = payload(300 * KiB)
    hub.add("a.bin", data, folder="one")
    hub.add("a.bin", data, folder="two")
    result = run(hub, tmp_path)
    hub.assert_placed(str(tmp_path))
    assert hub.bytes_for("a.bin") == len(data) and len(result.files) == 2


def test_http_proxy_and_no_proxy_are_honoured(hub, tmp_path):
    data = payload(300 * KiB)
    entry = hub.add("a.bin", data)
    with RangeServer() as proxy:
        # A forward proxy receives the absolute URL as the request target.
        proxy.files[hub.server.url(hf_path("a.bin"))] = data
        env = dict(hub.env, HTTP_PROXY=proxy.base_url)
        run(hub, tmp_path / "via", env=env)
        assert proxy.counters.requests > 0 and hub.server.counters.requests == 0
        env["NO_PROXY"] = "127.0.0.1"
        run(hub, tmp_path / "direct", env=env)
        assert hub.server.counters.requests > 0
    assert (tmp_path / "via" / "m" / "a.bin").read_bytes() == hub.data[entry.destination]


def test_background_priority_until_boost_then_normal_workers_finish_the_ranges(hub, tmp_path):
    """worker_nice: the download threads run niced; boost() (from a normal-priority thread)
    replaces them with normal ones, the niced ones hand their ranges back mid-stream, and the
    file still arrives whole and verified, each byte fetched about once."""
    import threading

    from packager.runtime.transfer.engine import Priority

    hub.add("big.bin", payload(2 * MiB, 7))
    hub.server.faults.rate = 512 * KiB  # 0.5 s per 256 KiB range: the boost lands mid-range
    priority = Priority()
    settings = dataclasses.replace(FAST, workers=2, worker_nice=5)
    outcome: dict = {}
    fetcher = threading.Thread(target=lambda: outcome.update(result=run(
        hub, tmp_path / "out", settings=settings, priority=priority)))
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    fetcher.start()
    deadline = time.monotonic() + 5
    niced: dict[int, int] = {}  # thread id -> nice value
    expected = min(19, base + 5)
    while time.monotonic() < deadline and (len(niced) < 2 or set(niced.values()) != {expected}):
        for t in threading.enumerate():
            if t.name.startswith("pack-transfer-0-") and t.native_id:
                try:
                    niced[t.native_id] = os.getpriority(os.PRIO_PROCESS, t.native_id)
                except OSError:
                    pass
        time.sleep(0.02)
    time.sleep(0.2)
    assert hub.server.counters.bytes_served < MiB  # still mid-download
    hub.server.faults.rate = None
    priority.boost()
    boosted = {os.getpriority(os.PRIO_PROCESS, t.native_id)
               for t in threading.enumerate() if t.name.startswith("pack-transfer-1-") and t.native_id}
    fetcher.join(30)
    assert len(niced) == 2 and set(niced.values()) == {expected}
    assert boosted == {base}
    result = outcome["result"]
    assert result.ok
    hub.assert_placed(str(tmp_path / "out"))
    # A handed-back range resumes at its next byte: at most what sat in the sockets is refetched.
    assert hub.bytes_for("big.bin") < 2 * MiB + 2 * FAST.buffer_size * 4


def test_boost_before_the_run_starts_at_normal_priority(hub, tmp_path):
    from packager.runtime.transfer.engine import Priority

    hub.add("a.bin", payload(300 * KiB, 8))
    priority = Priority()
    priority.boost()
    result = run(hub, tmp_path / "out", settings=dataclasses.replace(FAST, worker_nice=5),
                 priority=priority)
    assert result.ok and priority.boosted
    hub.assert_placed(str(tmp_path / "out"))


def test_every_request_acks_its_answer_at_once(hub, tmp_path, monkeypatch):
    """TCP_QUICKACK is set on the live socket after each request is sent and before its answer
    is read (kept-alive connections to servers that send head and body apart stall 40 ms each
    otherwise: measured 44 ms per small file from the hub stand-in, 1 to 18 ms with it)."""
    import socket

    from packager.runtime.transfer import http_pool, http_source

    calls: list[int] = []
    real = http_pool.quick_ack

    def recording(sock: object) -> None:
        real(sock)
        assert isinstance(sock, socket.socket)
        calls.append(sock.fileno())

    monkeypatch.setattr(http_source, "quick_ack", recording)
    for n in range(5):
        hub.add(f"f{n}.json", payload(200, n), "git-sha1")
    run(hub, tmp_path / "out")
    hub.assert_placed(str(tmp_path / "out"))
    requests = sum(hub.requests_for(f"f{n}.json") for n in range(5))
    assert len(calls) == requests >= 5
    assert all(fd >= 0 for fd in calls)  # a connected socket each time
