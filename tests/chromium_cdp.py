"""Open a local HTML file in real headless Chromium and look at it (tests only).

Drives Debian's ``chromium`` over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages separated by NUL bytes on file descriptors 3
and 4), so no port is opened, nothing is downloaded and no client library is needed.
:func:`open_page` loads the page and returns what the tests check: console errors and
uncaught exceptions, requests that left the file, the values of a JavaScript
expression, and a full-page PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--mute-audio", "--hide-scrollbars",
)  # fmt: skip


class ChromiumMissing(RuntimeError):
    pass


def chromium_path() -> str:
    """The Chromium executable ($RETROSTEP_CHROMIUM, else Debian's), or ChromiumMissing."""
    env = os.environ.get("RETROSTEP_CHROMIUM")
    for c in ((env,) if env else CHROMIUM_CANDIDATES):
        found = shutil.which(c)
        if found:
            return found
    raise ChromiumMissing(
        "Chromium is not installed: the report test needs Debian's chromium package "
        "(apt-get install -y chromium), or RETROSTEP_CHROMIUM set to a Chromium executable"
    )


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, log errors
    external_requests: list[str] = field(default_factory=list)
    value: object = None  # of the evaluated expression
    screenshot: bytes = b""  # PNG


class _Pipe:
    def __init__(self, proc: subprocess.Popen, rfd: int, wfd: int):
        self.proc = proc
        self.w = os.fdopen(wfd, "wb", buffering=0)
        self.r = os.fdopen(rfd, "rb", buffering=0)
        self.events: queue.Queue = queue.Queue()
        self.replies: dict[int, dict] = {}
        self.cv = threading.Condition()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = self.r.read(65536)
            if not chunk:
                with self.cv:
                    self.cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                m = json.loads(msg)
                if "id" in m:
                    with self.cv:
                        self.replies[m["id"]] = m
                        self.cv.notify_all()
                else:
                    self.events.put(m)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:  # fmt: skip
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.w.write(json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        with self.cv:
            while mid not in self.replies:
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"Chromium did not answer {method}")
                self.cv.wait(left)
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})


def open_page(path: Path, expression: str, *, width: int = 1100, timeout: float = 60.0,
              settle_s: float = 0.5) -> PageResult:  # fmt: skip
    """Load ``path`` in headless Chromium, evaluate ``expression`` (its JSON-able value),
    and take a full-page screenshot."""
    exe = chromium_path()
    res = PageResult()
    with tempfile.TemporaryDirectory(prefix="retrostep-chromium-") as profile:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()

        def child_fds() -> None:  # Chromium reads commands on fd 3 and writes on fd 4
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        log = open(Path(profile) / "chromium.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            [exe, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
             f"--window-size={width},900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            pass_fds=(3, 4), preexec_fn=child_fds,
        )  # fmt: skip
        os.close(to_r)
        os.close(from_w)
        pipe = _Pipe(proc, from_r, to_w)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            sess = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"]  # fmt: skip
            for domain in ("Runtime", "Log", "Page", "Network"):
                pipe.call(f"{domain}.enable", session=sess)
            pipe.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                      session=sess)  # fmt: skip
            pipe.call("Page.navigate", {"url": path.resolve().as_uri()}, session=sess)
            end = time.monotonic() + timeout
            loaded = False
            settle_until = None
            while True:
                now = time.monotonic()
                if now > end:
                    raise RuntimeError(f"{path} did not finish loading within {timeout} s")
                if settle_until is not None and now >= settle_until:
                    break
                try:
                    ev = pipe.events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if ev.get("sessionId") != sess:
                    continue
                _collect(ev, res)
                if ev["method"] == "Page.loadEventFired" and not loaded:
                    loaded = True
                    settle_until = time.monotonic() + settle_s
            out = pipe.call("Runtime.evaluate", {"expression": expression,
                                                 "returnByValue": True}, session=sess)  # fmt: skip
            if "exceptionDetails" in out:
                res.errors.append(f"evaluating the check: {out['exceptionDetails']}")
            res.value = out.get("result", {}).get("value")
            shot = pipe.call("Page.captureScreenshot",
                             {"format": "png", "captureBeyondViewport": True}, session=sess)
            res.screenshot = base64.b64decode(shot["data"])
            while not pipe.events.empty():  # anything logged while checking
                ev = pipe.events.get()
                if ev.get("sessionId") == sess:
                    _collect(ev, res)
            try:
                pipe.call("Browser.close", timeout=5)
            except RuntimeError:
                pass
        except RuntimeError as e:
            tail = (Path(profile) / "chromium.log").read_bytes()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{e}; Chromium said:\n{tail}") from e
        finally:
            log.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pipe.w.close()
    return res


def _collect(ev: dict, res: PageResult) -> None:
    m, p = ev["method"], ev.get("params", {})
    if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
        res.errors.append(f"console.{p['type']}: {args}")
    elif m == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        res.errors.append(f"exception: {d.get('text')} {d.get('exception', {}).get('description')}")
    elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
        e = p["entry"]
        res.errors.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}")
    elif m == "Network.requestWillBeSent":
        url = p.get("request", {}).get("url", "")
        if not url.startswith(("file:", "data:", "about:")):
            res.external_requests.append(url)
