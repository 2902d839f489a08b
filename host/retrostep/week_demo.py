"""A synthesized week of backward-walking training, recorded by the firmware itself.

One wearer (an older adult from the synthesizer) follows an interval program on six of
the last seven days: 2 min forward, 1 min backward, three times, the device cueing each
change. Early in the week the wearer leans out of line several times a session; later
less often: the kind of progress the companion's weekly view is for.

Each day's walk is synthesized (``retrostep.synth``) and replayed through the unmodified
firmware on the sim board (``retrostep.sim.run``: ``firmware/main.py`` in the MicroPython
unix port), every day on the same LittleFS image with the device clock set to that day.
So the session logs on the image are what the device would have written: its step
counts, its sway alerts, its interval cues. Nothing here writes a log itself.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from retrostep_core import config as cfg

from . import sim, synth
from .trace import write_trace

EPOCH_2000 = datetime(2000, 1, 1, tzinfo=timezone.utc)
FS_HZ = 52.0
FORWARD_S = 120
BACKWARD_S = 60
REPEAT = 3
IDLE_TIMEOUT_S = 30  # the session closes this long after the last step
REST_DAY = 3  # the fourth day of the week is a day off
# Excessive leans per session, day by day: frequent at first, rare by the end.
LEANS = (4, 3, 3, None, 2, 1, 0)


@dataclass
class Day:
    """One training day: when the walk starts (UTC) and what the wearer does."""

    index: int
    start: datetime
    segments: list[dict]
    leans: int

    @property
    def wall(self) -> int:
        """The device clock at boot, seconds since 2000-01-01 UTC (the log's epoch)."""
        return int((self.start - EPOCH_2000).total_seconds())


def program_config() -> dict:
    """The device config of the week: the interval program, a short idle timeout."""
    conf = cfg.defaults()
    conf["program"] = [("forward", FORWARD_S), ("backward", BACKWARD_S)]
    conf["program_repeat"] = REPEAT
    conf["idle_timeout_s"] = IDLE_TIMEOUT_S
    conf["device_name"] = "retrostep-demo"
    return conf


def _leans(n: int, duration: float, rng_seed: int) -> list[dict]:
    """``n`` excessive leans spread over a walking segment (none in its first 15 s)."""
    out = []
    for k in range(n):
        at = 15.0 + (duration - 30.0) * (k + 0.5) / max(n, 1)
        side = "left" if (k + rng_seed) % 2 else "right"
        out.append(synth._sw(at, 14.0 + 2.0 * ((k + rng_seed) % 3), side, 1.6))
    return out


def days(today: datetime | None = None) -> list[Day]:
    """The six training days of the last week (the last one yesterday), mornings."""
    now = today or datetime.now(timezone.utc)
    first = (now - timedelta(days=7)).date()
    out = []
    for i, leans in enumerate(LEANS):
        if i == REST_DAY or leans is None:
            continue
        day = first + timedelta(days=i)
        start = datetime.combine(day, time(9, 30 + 3 * i), tzinfo=timezone.utc)
        segs: list[dict] = [synth._st(5.0)]
        for rep in range(REPEAT):
            # the leans happen while walking backward, where balance is hardest
            back = _leans(leans // REPEAT + (1 if rep < leans % REPEAT else 0), BACKWARD_S, i)
            segs += [synth._w(FORWARD_S), synth._st(2.0), synth._b(BACKWARD_S - 2.0, sway=back)]
        segs.append(synth._st(IDLE_TIMEOUT_S + 5.0))
        out.append(Day(i, start, segs, leans))
    return out


def record(image: Path, plan: list[Day], *, seed: int = 2026,
           on_day: Callable[[Day, sim.SimRun], None] | None = None) -> list[sim.SimRun]:
    """Walk every day of ``plan`` on the sim board, all onto ``image``."""
    person = synth.make_person(seed, kind="older")
    runs = []
    with tempfile.TemporaryDirectory(prefix="retrostep-week-") as tmp:
        conf_path = Path(tmp) / "config.bin"
        conf_path.write_bytes(cfg.encode(program_config()))
        for day in plan:
            trace, _ = synth.synthesize(day.segments, person, fs_hz=FS_HZ, seed=seed + day.index)
            path = Path(tmp) / f"day{day.index}.csv"
            write_trace(path, trace)
            res = sim.run(str(path), image=str(image), config=str(conf_path), wall=day.wall)
            runs.append(res)
            if on_day is not None:
                on_day(day, res)
    return runs


# -- the end-to-end demo: record, flash, sync over the simulated radio, report -----------


@dataclass
class DemoPaths:
    """Everything the demo makes lives under one directory; the user's own config,
    store and keys are never touched."""

    root: Path

    @property
    def image(self) -> Path:
        return self.root / "device-flash.img"

    @property
    def store(self) -> Path:
        return self.root / "sessions.sqlite3"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def radio(self) -> Path:
        return self.root / "radio.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"


def isolated_env(paths: DemoPaths) -> dict[str, str]:
    """Environment overrides that keep keys, store and radio inside the demo directory."""
    return {
        "RETROSTEP_CONFIG_DIR": str(paths.config_dir),
        "RETROSTEP_DATA_DIR": str(paths.root),
        "RETROSTEP_DB": str(paths.store),
        "RETROSTEP_SIM_RADIO": str(paths.radio),
    }


def run(paths: DemoPaths, echo: Callable[[str], None], *, scan_s: float = 2.0,
        progress_bars: bool = False) -> dict:
    """The whole demo; returns what a test checks (runs, sync outcome, report path).

    1. a fresh flash image; the firmware is installed on it with ``retrostep flash``
       (compiled with mpy-cross, provisioned with a name and a key for this computer);
    2. six days of walks recorded on it by the firmware on the sim board;
    3. the virtual board boots that image with its simulated radio;
    4. ``retrostep sync`` pulls the sessions over the radio into a new SQLite store
       (authenticated with the provisioned key, the device clock set);
    5. the store's progress view and an HTML report.
    """
    import os

    import click

    from .flash import command as flash_command
    from .report import write as write_report
    from .store import Store
    from .sync.ble import Radio
    from .sync.command import sync_device
    from .virtual_board import VirtualBoard

    paths.root.mkdir(parents=True, exist_ok=True)
    for p in (paths.image, paths.store, paths.report):
        if p.exists():
            p.unlink()
    saved = {k: os.environ.get(k) for k in isolated_env(paths)}
    os.environ.update(isolated_env(paths))
    try:
        echo("1. Installing the firmware on a blank device (virtual board, mpy-cross, "
             "A/B slots, a key for this computer) ...")
        for line in flash_command.run(None, True, str(paths.image), False, False, None, 60.0,
                                      False):  # fmt: skip
            echo("   " + line)

        plan = days()
        echo(f"2. A week of training recorded by the firmware on the sim board: "
             f"{len(plan)} sessions of {FORWARD_S // 60} min forward / {BACKWARD_S // 60} "
             f"min backward x {REPEAT} ...")  # fmt: skip

        def on_day(day: Day, res: sim.SimRun) -> None:
            s = res.sessions[-1]
            echo(f"   {day.start:%a %d %b %H:%M}  {s['forward_steps']:4d} forward, "
                 f"{s['backward_steps']:4d} backward steps, {s['sway_alerts']} sway "
                 f"alert(s), {len(s['intervals'])} cues, {s['bytes']} B on flash")  # fmt: skip

        runs = record(paths.image, plan, on_day=on_day)

        echo("3. Booting the device with its simulated radio, then syncing over BLE ...")
        with VirtualBoard(paths.image, radio=True, publish=paths.radio):
            with Store.open(str(paths.store)) as store:
                bar = None
                if progress_bars:
                    bar_ctx = click.progressbar(length=1, label="   syncing", show_pos=False)
                    bar = bar_ctx.__enter__()

                def on_total(n: int) -> None:
                    if bar is not None:
                        bar.length = max(n, 1)

                def on_progress(n: int) -> None:
                    if bar is not None:
                        bar.update(n)

                try:
                    outcome = sync_device(store, Radio.simulated(paths.radio), timeout=scan_s,
                                          on_total=on_total, on_progress=on_progress)  # fmt: skip
                finally:
                    if bar is not None:
                        bar_ctx.__exit__(None, None, None)
                for line in outcome.lines():
                    echo("   " + line)
                write_report(store, paths.report)
        return {"runs": runs, "outcome": outcome, "report": paths.report, "plan": plan}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
