"""`retrostep report` opened in real headless Chromium (Debian's chromium package): no
console errors, nothing fetched from outside the file, every plot present and drawn with
a real size, and a full-page screenshot that shows them (the plot colours are there).

Chromium missing is a failure, not a skip: CI installs it (apt-get install -y chromium).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from chromium_cdp import ChromiumMissing, chromium_path, open_page
from cli_invoke import invoke
from companion_data import history, sim_logs

from retrostep.store import Store

SYNCED = datetime(2026, 3, 2, 18, 30, tzinfo=timezone.utc)

CHECK = """(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const one = (sel) => { const el = document.querySelector(sel); return el ? box(el) : null; };
  const all = (sel) => [...document.querySelectorAll(sel)].map(box);
  return JSON.stringify({
    title: document.title,
    plots: [...document.querySelectorAll('.plot svg')].map(
      (s) => [...box(s), s.querySelectorAll('path, use').length]),
    stepsForward: one('#steps-forward path'),
    stepsBackward: one('#steps-backward path'),
    swayRange: one('#sway-range path'),
    swayLimit: one('#sway-limit path'),
    alerts: document.querySelectorAll('#sway-alerts use').length,
    weekBars: all('[id^="week-backward-min-"] path'),
    weekStepBars: all('[id^="week-backward-steps-"] path'),
    alertRate: one('#week-alert-rate path'),
    suggestion: (document.querySelector('#suggestion') || {}).textContent || '',
  });
})()"""


def _need_chromium() -> str:
    try:
        return chromium_path()
    except ChromiumMissing as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "s.sqlite3"
    with Store.open(path) as store, store.transaction():
        for s in history():
            store.import_session("clip-A", s.raw, synced_at=SYNCED)
        for raw in sim_logs():
            store.import_session("sim-1", raw, synced_at=SYNCED)
    return path


def _colour_pixels(png: bytes) -> dict:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = img.size
    counts = {"background": 0, "forward": 0, "backward": 0, "alert": 0}
    for (r, g, b), n in [(c, n) for n, c in img.getcolors(w * h)]:
        if r > 245 and g > 245 and b > 245:
            counts["background"] += n
        elif abs(r - 0x00) < 12 and abs(g - 0x72) < 12 and abs(b - 0xB2) < 12:
            counts["forward"] += n
        elif abs(r - 0xE6) < 12 and abs(g - 0x9F) < 12 and abs(b - 0x00) < 12:
            counts["backward"] += n
        elif abs(r - 0xD5) < 12 and abs(g - 0x5E) < 12 and abs(b - 0x00) < 12:
            counts["alert"] += n
    counts["size"] = (w, h)
    counts["total"] = w * h
    return counts


def _keep(png: bytes, name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    path.write_bytes(png)
    out = os.environ.get("RETROSTEP_TEST_ARTIFACTS")  # CI can keep the screenshots
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(out) / name)
    return path


@pytest.mark.parametrize("which", ["demo", "sim"])
def test_report_in_headless_chromium(db, tmp_path, which):
    _need_chromium()  # missing: a failure with what to install, not a skip
    rows = json.loads(invoke("--db", db, "sessions", "--json").stdout)
    if which == "demo":  # the latest of six weeks of sessions
        session = [r for r in rows if r["device_id"] == "clip-A"][-1]
    else:  # the firmware's own log from the sim board: forward, backward, two alerts
        session = next(r for r in rows if r["device_id"] == "sim-1" and r["device_session"] == 1)
    report = tmp_path / "report.html"
    res = invoke("--db", db, "report", "-o", report, "--session", session["id"], "--weeks", 8)
    assert res.exit_code == 0, res.stderr
    t = time.perf_counter()
    page = open_page(report, CHECK)
    elapsed = time.perf_counter() - t
    assert page.errors == [], page.errors
    assert page.external_requests == [], page.external_requests
    got = json.loads(page.value)
    assert got["title"] == "retrostep report"
    assert len(got["plots"]) == 2
    for w, h, n in got["plots"]:
        assert w > 600 and h > 300 and n > 20, got["plots"]
    for key in ("stepsForward", "swayRange", "swayLimit", "alertRate"):
        assert got[key] is not None and got[key][0] > 100, (key, got[key])
    assert got["stepsForward"][1] > 10 and got["swayRange"][1] > 10
    assert got["stepsBackward"][0] > 20 and got["stepsBackward"][1] > 10
    assert got["alerts"] == session["sway_alerts"] > 0
    weeks = json.loads(invoke("--db", db, "progress", "--json", "--weeks", 8).stdout)["weeks"]
    assert len(got["weekBars"]) == len(got["weekStepBars"]) == len(weeks)
    for (_, h), w in zip(got["weekBars"], weeks, strict=True):
        assert (h > 0) == (w["backward_minutes"] > 0), (h, w)
    assert "Next week:" in got["suggestion"]

    png = page.screenshot
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    path = _keep(png, f"report-{which}.png", tmp_path)
    px = _colour_pixels(png)
    assert px["size"][0] >= 1000 and px["size"][1] > 2000, px  # the whole page
    assert px["background"] < 0.97 * px["total"], px
    assert px["forward"] > 2000 and px["backward"] > 2000 and px["alert"] > 50, px
    assert path.stat().st_size > 20_000
    assert elapsed < 60
