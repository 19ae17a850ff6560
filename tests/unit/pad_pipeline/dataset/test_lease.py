"""The build's lease: one writer per OUT, a holder named in the refusal, and the stale rule (heartbeat older
than STALE_AFTER_S, or a dead pid on this host) that keeps a crashed writer from blocking for ever."""

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.lease import STALE_AFTER_S, BuildLease, LeaseInfo, read_lease, stale_reason


def _write_lease(out, host, pid, heartbeat_age):
    now = time.time()
    info = LeaseInfo("someone-else", host, pid, now - 3600, now - heartbeat_age)
    storage.write_bytes(os.path.join(out, "lease.json"), info.encode())
    return info


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_writer_is_refused_in_one_line_naming_the_holder(tmp_path):
    out = str(tmp_path / "b")
    with BuildLease(out, io.StringIO()) as first:
        with pytest.raises(PadError) as refused:
            BuildLease(out, io.StringIO()).acquire()
        message = str(refused.value)
        assert "\n" not in message and f"pid {os.getpid()} on host {socket.gethostname()}" in message
        assert read_lease(out).owner == first.info.owner  # the refused run left the holder's lease alone
    assert read_lease(out) is None and not os.path.exists(out)  # given back; the folder it made removed


def test_a_live_holder_on_this_host_with_a_fresh_heartbeat_blocks(tmp_path):
    _write_lease(str(tmp_path), socket.gethostname(), os.getpid(), heartbeat_age=5)
    with pytest.raises(PadError, match="another `pad annotate` is writing this build"):
        BuildLease(str(tmp_path), io.StringIO()).acquire()


def test_a_dead_pid_on_this_host_is_taken_over_at_once(tmp_path):
    _write_lease(str(tmp_path), socket.gethostname(), _dead_pid(), heartbeat_age=1)
    log = io.StringIO()
    with BuildLease(str(tmp_path), log) as lease:
        assert read_lease(str(tmp_path)).owner == lease.info.owner
    assert "taking over a stale lease" in log.getvalue() and "no longer alive" in log.getvalue()


def test_another_hosts_lease_is_stale_only_after_its_heartbeat_stops(tmp_path):
    _write_lease(str(tmp_path), "other-host", 1, heartbeat_age=10)  # pid 1 there says nothing here
    with pytest.raises(PadError, match="on host other-host"):
        BuildLease(str(tmp_path), io.StringIO()).acquire()
    _write_lease(str(tmp_path), "other-host", 1, heartbeat_age=STALE_AFTER_S + 5)
    log = io.StringIO()
    with BuildLease(str(tmp_path), log):
        pass
    assert "heartbeat is" in log.getvalue()


def test_stale_rule():
    now, host = 1000.0, socket.gethostname()
    fresh = LeaseInfo("o", "elsewhere", 123, 0.0, now - 1)
    assert stale_reason(fresh, now, host) is None
    assert "heartbeat" in stale_reason(LeaseInfo("o", "elsewhere", 123, 0.0, now - STALE_AFTER_S - 1), now, host)
    assert stale_reason(LeaseInfo("o", host, os.getpid(), 0.0, now - 1), now, host) is None
    assert "no longer alive" in stale_reason(LeaseInfo("o", host, _dead_pid(), 0.0, now - 1), now, host)


def test_the_heartbeat_renews_and_a_holder_that_lost_the_lease_knows(tmp_path):
    out = str(tmp_path)
    lease = BuildLease(out, io.StringIO(), heartbeat_s=3600)  # beats by hand below, not by its thread
    lease.acquire()
    first = read_lease(out).heartbeat
    time.sleep(0.01)
    assert lease.renew() and read_lease(out).heartbeat > first and not lease.lost
    _write_lease(out, "other-host", 7, heartbeat_age=0)  # taken over (as after a long stop of this process)
    assert not lease.renew()
    lease.release()
    assert lease.lost and lease.lost_to.host == "other-host"
    assert read_lease(out).host == "other-host"  # release never removes another owner's lease


def test_on_an_object_store_url_a_second_writer_is_refused():
    out = f"memory://lease-{uuid.uuid4().hex}"  # fsspec's conditional create (mode "xb"), as on s3:// or gs://
    with BuildLease(out, io.StringIO()):
        with pytest.raises(PadError, match="another `pad annotate` is writing this build"):
            BuildLease(out, io.StringIO()).acquire()
    assert read_lease(out) is None


def test_of_many_racing_writers_exactly_one_gets_the_lease(tmp_path):
    out = str(tmp_path / "b")
    won, refused = [], []
    start = threading.Barrier(8)

    def take():
        lease = BuildLease(out, io.StringIO())
        start.wait()
        try:
            lease.acquire()
            won.append(lease)
        except PadError:
            refused.append(lease)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 7
    assert json.loads(storage.read_bytes(storage.join(out, "lease.json")))["owner"] == won[0].info.owner
    won[0].release()
    assert read_lease(out) is None
