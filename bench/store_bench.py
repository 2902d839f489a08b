"""The session store with 1,000 sessions: how fast the companion answers, how big it gets.

Builds 1,000 sessions (``retrostep.demo_data.history``: about five years of four walks a
week, each a session log as the firmware writes it, 20 to 40 minutes with a growing
backward interval), imports them into a fresh store, and times the commands a person
runs, as separate processes (``retrostep --db STORE ...``, start-up included, the median
of several runs): ``sessions``, ``progress`` (table and ``--json``) and ``report``. Also
the import and ``db check``, and the store's size per session against the raw logs.
Called by ``store_section()``; alone:

    python -m bench.store_bench
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from retrostep import demo_data
from retrostep.store import Store

SESSIONS = 1000
PER_WEEK = 4
SEED = 21
RUNS = 5
TARGETS = {"sessions": 0.5, "sessions --json": 0.5, "progress": 0.5, "progress --json": 0.5,
           "report": 3.0}  # fmt: skip


def _cli(db: Path, *args: str) -> float:
    """Wall time of one `retrostep` process (s); raises if it fails."""
    cmd = [sys.executable, "-m", "retrostep.cli", "--db", str(db), *args]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.strip()}")
    return dt


def measure(n: int = SESSIONS, runs: int = RUNS) -> dict:
    with tempfile.TemporaryDirectory(prefix="retrostep-store-bench-") as tmp:
        db = Path(tmp) / "sessions.sqlite3"
        t = time.perf_counter()
        hist = demo_data.history(weeks=-(-n // PER_WEEK), per_week=PER_WEEK, seed=SEED)[:n]
        t_gen = time.perf_counter() - t
        raw_bytes = sum(len(s.raw) for s in hist)
        hours = 0.0
        synced = datetime.now(timezone.utc)
        t = time.perf_counter()
        with Store.open(db) as store, store.transaction():
            for s in hist:
                store.import_session(demo_data.DEMO_DEVICE_ID, s.raw, synced_at=synced)
        t_import = time.perf_counter() - t
        with Store.open(db, readonly=True) as store:
            rows = store.sessions()
            hours = sum(r.duration_s for r in rows) / 3600
            t = time.perf_counter()
            rep = store.check()
            t_check = time.perf_counter() - t
            assert rep.ok, rep.problems[:3]
        size = db.stat().st_size
        times = {}
        for label, args in (("sessions", ["sessions"]), ("sessions --json", ["sessions", "--json"]),
                            ("progress", ["progress"]), ("progress --json", ["progress", "--json"]),
                            ("report", ["report", "-o", str(Path(tmp) / "r.html")])):  # fmt: skip
            times[label] = statistics.median(_cli(db, *args) for _ in range(runs))
        report_bytes = (Path(tmp) / "r.html").stat().st_size
        t = time.perf_counter()
        _cli(db, "--version")
        startup = time.perf_counter() - t
    return {
        "n": len(hist), "hours": hours, "gen_s": t_gen, "import_s": t_import,
        "check_s": t_check, "file_bytes": size, "raw_bytes": raw_bytes, "times": times,
        "report_bytes": report_bytes, "startup_s": startup,
    }  # fmt: skip


def store_section(m: dict | None = None) -> list[str]:
    """Markdown lines for docs/benchmarks.md."""
    m = measure() if m is None else m
    n = m["n"]
    lines = [
        "## The session store",
        "",
        f"{n} sessions ({m['hours']:.0f} h of walking; `retrostep.demo_data.history`, seed "
        f"{SEED}, {PER_WEEK} a week) imported into a fresh store; every command timed as a "
        f"separate `retrostep --db STORE ...` process, start-up included (median of {RUNS}). "
        "Measured by `bench/store_bench.py`.",
        "",
        "| command | time | target | met |",
        "|---|---|---|---|",
    ]
    for label, dt in m["times"].items():
        target = TARGETS[label]
        lines.append(f"| `retrostep {label}` | {dt:.2f} s | < {target:g} s | "
                     f"{'yes' if dt < target else 'no'} |")  # fmt: skip
    per = m["file_bytes"] / n
    raw = m["raw_bytes"] / n
    lines += [
        "",
        "| quantity | value |",
        "|---|---|",
        f"| store size per session | {per / 1024:.1f} KiB ({per:.0f} B) |",
        f"| raw log per session (kept byte for byte) | {raw / 1024:.1f} KiB |",
        f"| overhead of the derived columns, indexes and pages | {100 * (per / raw - 1):.0f} % |",
        f"| store file for {n} sessions | {m['file_bytes'] / 2**20:.1f} MiB |",
        f"| import, one transaction | {m['import_s']:.1f} s ({n / m['import_s']:.0f} sessions/s) |",
        f"| `db check` (integrity check + every log decoded again) | {m['check_s']:.1f} s |",
        f"| report file | {m['report_bytes'] / 1024:.0f} KiB |",
        f"| `retrostep --version` (interpreter start-up) | {m['startup_s']:.2f} s |",
        "",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(store_section()))
