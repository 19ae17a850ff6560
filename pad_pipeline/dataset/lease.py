"""The lease on a build: one writer per OUT, as a database has one writer per data file.

`pad annotate` takes `OUT/lease.json` before it writes anything and gives it back when it ends. The file
holds the holder's `owner` token, `host`, `pid`, `started` and `heartbeat` (Unix seconds); it is created
through `storage.create_exclusive` (an atomic create-if-absent on local disks and object stores), so of
two runs started together exactly one gets it; the other is refused in one line naming the holder. The
holder renews the heartbeat every `HEARTBEAT_S` seconds from a daemon thread, re-reading the file first:
a holder that finds another owner's token there has lost the lease and says so when it ends.

The stale rule (a crashed holder never blocks a build for ever): a lease is stale, and is taken over,
when its heartbeat is older than `STALE_AFTER_S` seconds, or when it was taken on this host by a pid that
is no longer alive (a killed run on this machine is taken over at once). Readers (`pad status`, `verify`,
`stats`, `publish`, the trainer) never take or look at the lease.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import BuildLayout

HEARTBEAT_S = 15.0
STALE_AFTER_S = 120.0


@dataclass(frozen=True)
class LeaseInfo:
    """What `OUT/lease.json` says about its holder."""

    owner: str
    host: str
    pid: int
    started: float
    heartbeat: float

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, data: bytes) -> "LeaseInfo | None":
        """The lease in `data`; None when it is not one (a half-written file on a store without renames)."""
        try:
            d: Any = json.loads(data)
            return cls(str(d["owner"]), str(d["host"]), int(d["pid"]), float(d["started"]), float(d["heartbeat"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self, now: float) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"pid {self.pid} on host {self.host}, started {started}, heartbeat {now - self.heartbeat:.0f} s ago"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a zombie, dead but not yet reaped, counts as not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stale_reason(info: LeaseInfo, now: float, host: str, stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Why the lease `info` is stale (see the module docstring), or None while its holder counts as alive."""
    if now - info.heartbeat > stale_after_s:
        return f"its heartbeat is {now - info.heartbeat:.0f} s old (stale after {stale_after_s:g} s)"
    if info.host == host and not pid_alive(info.pid):
        return f"its pid {info.pid} on this host ({host}) is no longer alive"
    return None


def read_lease(out: str) -> LeaseInfo | None:
    """The lease of the build at `out`, or None when nobody holds it."""
    try:
        return LeaseInfo.decode(storage.read_bytes(BuildLayout(out).lease))
    except FileNotFoundError:
        return None


class BuildLease:
    """The writer's lease on the build at `out`: `acquire()`, then `release()` (or use it as a context)."""

    def __init__(self, out: str, stream: TextIO | None = None, heartbeat_s: float = HEARTBEAT_S,
                 stale_after_s: float = STALE_AFTER_S):
        self.out, self.url = out, BuildLayout(out).lease
        self.stream = stream or sys.stderr
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.info = LeaseInfo(uuid.uuid4().hex, socket.gethostname(), os.getpid(), time.time(), time.time())
        self.lost = False
        self.lost_to: LeaseInfo | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made_folder = "://" not in out and not os.path.exists(out)

    def acquire(self) -> None:
        """Take the lease, taking over a stale one; a PadError naming the holder when it is held."""
        for _ in range(3):
            if storage.create_exclusive(self.url, self.info.encode()):
                self._thread = threading.Thread(target=self._beat, name="pad-lease", daemon=True)
                self._thread.start()
                return
            current = read_lease(self.out)
            now = time.time()
            if current is None:
                if storage.exists(self.url):
                    raise PadError(f"{self.url}: unreadable lease; if no `pad annotate` runs on {self.out}, "
                                   "delete this file and rerun")
                continue  # given back between our create and our read: try again
            reason = stale_reason(current, now, self.info.host, self.stale_after_s)
            if reason is None:
                raise PadError(f"{self.out}: another `pad annotate` is writing this build ({current.describe(now)}); "
                               f"wait for it to end (a lease {self.stale_after_s:g} s without heartbeat is taken "
                               "over), or use another --out")
            print(f"[pad] {self.out}: taking over a stale lease ({current.describe(now)}: {reason})",
                  file=self.stream, flush=True)
            if read_lease(self.out) == current:  # nobody took it over meanwhile
                storage.remove(self.url)
        raise PadError(f"{self.out}: could not take the lease (other runs keep taking it); retry in a minute")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self.renew():
                return

    def renew(self) -> bool:
        """Write a fresh heartbeat; False (and `lost_to` set) when another owner holds the lease now."""
        try:
            current = read_lease(self.out)
        except OSError:  # a store hiccup: try again at the next beat
            return True
        if current is None or current.owner != self.info.owner:
            self.lost, self.lost_to = True, current
            print(f"[pad] {self.out}: lost the lease to "
                  f"{current.describe(time.time()) if current else 'nobody (the file was removed)'}",
                  file=self.stream, flush=True)
            return False
        try:
            storage.write_bytes(self.url, LeaseInfo(**{**asdict(self.info), "heartbeat": time.time()}).encode())
        except OSError:
            pass
        return True

    def release(self) -> None:
        """Stop the heartbeat and remove the lease if it is still ours (and OUT, if this run made it empty)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        current = read_lease(self.out)
        if current is not None and current.owner == self.info.owner:
            storage.remove(self.url)
        if self._made_folder:
            try:
                os.rmdir(self.out)  # only when empty: a refused first run leaves no folder behind
            except OSError:
                pass

    def __enter__(self) -> "BuildLease":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
