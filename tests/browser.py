"""A real headless Chromium for tests, driven over the DevTools protocol on a pipe (no extra package).

`open_page(path)` starts the system's `chromium --headless --remote-debugging-pipe`, loads the file,
waits for its load event and returns a `PageReport`: the console errors, uncaught exceptions and log
entries of level error, every request that is not a `data:` URI or the page itself, a JS evaluation
result and a PNG screenshot of the full page. A missing Chromium fails the test (CI must install it:
`apt-get install chromium`); the tests never install anything themselves.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import pytest

INSTALL_HINT = "Chromium is missing: apt-get install chromium (Debian package `chromium`)"


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(INSTALL_HINT)


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)     # console errors, exceptions, error log entries
    requests: list[str] = field(default_factory=list)   # URLs other than data: and the page itself
    value: object = None                                 # result of the `evaluate` expression
    screenshot: bytes = b""


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int):
        self.proc, self.write_fd, self.read_fd = proc, write_fd, read_fd
        self.buffer, self.next_id, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.write_fd, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events:
                if e.get("method") == method:
                    return e
            self.events.append(self._read())
        raise TimeoutError(method)

    def _read(self) -> dict:
        while b"\0" not in self.buffer:
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe (exit {self.proc.poll()})")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)


def _collect(report: PageReport, events: list[dict], page_url: str) -> None:
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            report.errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif m == "Runtime.exceptionThrown":
            report.errors.append(f"exception: {p['exceptionDetails'].get('text')}")
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            report.errors.append(f"log: {p['entry']['text']}")
        elif m == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if not url.startswith("data:") and url != page_url:
                report.requests.append(url)


def open_page(path: str, evaluate: str = "null", width: int = 1280, height: int = 900) -> PageReport:
    """Load `path` in headless Chromium and report what happened (see the module docstring)."""
    binary = chromium_binary()
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    profile = tempfile.mkdtemp(prefix="pad-chromium-")
    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]
    # Chromium reads commands on fd 3 and writes replies on fd 4.
    cmd = ["bash", "-c", f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}', *args]
    proc = subprocess.Popen(cmd, pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(proc, to_chrome_w, from_chrome_r)
    url = "file://" + os.path.abspath(path)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        pipe.events.clear()
        pipe.send("Page.navigate", {"url": url}, session=session)
        pipe.wait_event("Page.loadEventFired")
        report = PageReport()
        report.value = pipe.send("Runtime.evaluate", {"expression": evaluate, "returnByValue": True},
                                 session=session)["result"].get("value")
        shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        report.screenshot = base64.b64decode(shot["data"])
        _collect(report, pipe.events, url)
        return report
    finally:
        try:
            pipe.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        shutil.rmtree(profile, ignore_errors=True)
