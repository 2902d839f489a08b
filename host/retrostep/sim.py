"""`retrostep sim`: the unmodified firmware on the sim board, in the MicroPython unix port.

``run``: the trace becomes an int32 sample file, ``firmware/main.py`` boots on the sim
board (its IMU replays the samples, its flash is a LittleFS image file), and what the
device logged and did (motor pulses, power states) comes back. ``logs``: a small
MicroPython script dumps the session files of an image (the host never mounts it) and
the shared codec (``retrostep_core.records``) decodes them here.
"""

from __future__ import annotations

import binascii
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from retrostep_core import records as r

from .errors import RetrostepError, RuntimeUnavailable
from .pipeline_io import trace_to_int_samples
from .runtime.micropython_port import core_search_path, micropython_executable
from .trace import read_trace

TIMEOUT_S = 600


class SimError(RetrostepError):
    """The simulated device could not run or its image could not be read."""

    exit_code = 2


def firmware_dir() -> Path:
    """The firmware directory (main.py, retrostep_core, retrostep_device)."""
    env = os.environ.get("RETROSTEP_FIRMWARE")
    d = Path(env) if env else Path(core_search_path())
    if not (d / "main.py").is_file() or not (d / "retrostep_device").is_dir():
        raise SimError(f"firmware not found in {d} (set RETROSTEP_FIRMWARE to firmware/)")
    return d


def _run_mp(args: list[str], what: str, heap: str | None = None) -> str:
    exe = micropython_executable()
    if heap is not None:  # the unix port's own option: -X heapsize=64k
        args = ["-X", f"heapsize={heap}", *args]
    env = dict(os.environ)
    env["MICROPYPATH"] = ".frozen:" + str(firmware_dir())
    try:
        proc = subprocess.run(
            [exe, *args], capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False
        )
    except OSError as e:
        raise RuntimeUnavailable(f"cannot start {exe}: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise SimError(f"{what} did not finish within {TIMEOUT_S} s") from e
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        raise SimError(f"{what} failed: {lines[-1]}")
    return proc.stdout


@dataclass
class SimRun:
    motor: list[tuple[int, int]] = field(default_factory=list)  # (t_ms since boot, duty)
    power: list[tuple[int, str]] = field(default_factory=list)
    live: dict = field(default_factory=dict)
    console: list[str] = field(default_factory=list)  # anything else the firmware printed
    sessions: list[dict] = field(default_factory=list)
    heap: list[tuple[int, int, int]] = field(default_factory=list)  # (t_ms, alloc, free)
    heap_peak: dict = field(default_factory=dict)  # max_alloc, max_raw, mem_peak (-1: n/a)


def run(
    trace_path: str, *, image: str | None = None, speed: float = 0.0,
    config: str | None = None, buttons: tuple[int, ...] = (), fault_ms: int | None = None,
    heap: str | None = None, heap_every_ms: int | None = None, wall: int | None = None,
) -> SimRun:  # fmt: skip
    """Boot the firmware on the sim board with this trace; the image is kept if given.

    ``heap``: the unix port's heap size (``"64k"``: ``micropython -X heapsize=64k``; None:
    the port's default). ``heap_every_ms``: the sim board's heap diagnostic, a
    ``gc.collect()`` + ``gc.mem_alloc()`` sample every that many ms of sample time
    (``SimRun.heap``, ``SimRun.heap_peak``)."""
    if not Path(trace_path).is_file():
        raise SimError(f"trace not found: {trace_path}")
    if config is not None and not Path(config).is_file():
        raise SimError(f"config file not found: {config}")
    trace = read_trace(trace_path)
    with tempfile.TemporaryDirectory(prefix="retrostep-sim-") as tmp:
        samples = Path(tmp) / "imu.i32"
        trace_to_int_samples(trace).astype("<i4").tofile(samples)
        img = image or str(Path(tmp) / "flash.img")
        args = [str(firmware_dir() / "main.py"), "--samples", str(samples),
                "--fs", repr(float(trace.fs_hz)), "--image", img,
                "--speed", repr(float(speed))]  # fmt: skip
        if config is not None:
            args += ["--config", str(config)]
        if fault_ms is not None:  # the sim motor driver raises once then (tests)
            args += ["--fault", str(int(fault_ms))]
        if heap_every_ms is not None:
            args += ["--heap-every", str(int(heap_every_ms))]
        if wall is not None:  # the device clock at boot, seconds since 2000-01-01 UTC
            args += ["--wall", str(int(wall))]
        for b in buttons:
            args += ["--button", str(int(b))]
        out = _run_mp(args, "the simulated device", heap)
        res = _parse_run(out)
        res.sessions = read_sessions(img)
    return res


def _parse_run(out: str) -> SimRun:
    res = SimRun()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "M":
            res.motor.append((int(parts[1]), int(parts[2])))
        elif len(parts) == 3 and parts[0] == "P":
            res.power.append((int(parts[1]), parts[2]))
        elif len(parts) == 4 and parts[0] == "H":
            res.heap.append((int(parts[1]), int(parts[2]), int(parts[3])))
        elif len(parts) == 4 and parts[0] == "HP":
            keys = ("max_alloc", "max_raw", "mem_peak")
            res.heap_peak = dict(zip(keys, map(int, parts[1:]), strict=True))
        elif len(parts) == 6 and parts[0] == "L":
            keys = ("forward", "backward", "sway_alerts", "config_problems", "errors")
            res.live = dict(zip(keys, map(int, parts[1:]), strict=True))
        else:
            res.console.append(line)
    return res


DUMP = """
import sys, os, vfs
from binascii import hexlify
from retrostep_device.blockdev import FileBlockDevice
bd = FileBlockDevice(sys.argv[1], 4096, None)
try:
    vfs.mount(vfs.VfsLfs2(bd), "/flash")
except OSError as e:
    raise SystemExit("cannot mount %s: not a LittleFS image (%r)" % (sys.argv[1], e))
try:
    names = os.listdir("/flash/logs")
except OSError:
    names = []
for name in names:
    if name.endswith(".rsl"):
        with open("/flash/logs/" + name, "rb") as f:
            data = f.read()
        print("S", name[:-4], hexlify(data).decode() or "-")
"""


def read_session_files(image: str | Path) -> list[tuple[int, bytes]]:
    """``(session id, bytes)`` of every session file of a LittleFS image, by id, byte for
    byte (a small MicroPython script dumps them: the host never mounts the image)."""
    p = Path(image)
    if not p.is_file():
        raise SimError(f"image not found: {image}")
    if p.stat().st_size < 2 * 4096 or p.stat().st_size % 4096:
        raise SimError(f"{image}: not a flash image (size {p.stat().st_size} bytes)")
    with tempfile.TemporaryDirectory(prefix="retrostep-sim-") as tmp:
        script = Path(tmp) / "dump.py"
        script.write_text(DUMP)
        out = _run_mp([str(script), str(p)], f"reading {image}")
    files = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "S" and parts[1].isdigit():
            files.append((int(parts[1]), b"" if parts[2] == "-" else binascii.unhexlify(parts[2])))
    files.sort()
    return files


def read_sessions(image: str) -> list[dict]:
    """Decode every session file of a LittleFS image, oldest first."""
    return [summarize(sid, data) for sid, data in read_session_files(image)]


def summarize(sid: int, data: bytes) -> dict:
    """One session file as a summary dict (the records too, JSON-ready)."""
    rep = r.decode_report(data)
    recs = rep["records"]
    end = next((f for k, f in reversed(recs) if k == r.END), None)
    steps = r.steps_of(recs)
    notes = [f for k, f in recs if k == r.NOTE]
    return {
        "id": sid,
        "bytes": len(data),  # the session file's size on flash
        "forward_steps": sum(1 for _, d in steps if d > 0),
        "backward_steps": sum(1 for _, d in steps if d < 0),
        "sway_alerts": sum(1 for k, _ in recs if k == r.SWAY_ALERT),
        "duration_s": round((end["t"] if end else max((f.get("t", 0) for _, f in recs),
                                                      default=0)) / 1000.0, 3),
        "end_reason": r.END_NAMES.get(end["reason"], "unknown") if end else None,
        "notes": notes,
        "intervals": [f for k, f in recs if k == r.INTERVAL],
        "ended_cleanly": rep["ended_cleanly"],
        "damaged_bytes": rep["skipped_bytes"] + rep["torn_bytes"],
        "records": [{"type": r.TYPE_NAMES.get(k, str(k)), **_jsonable(f)} for k, f in recs],
    }  # fmt: skip


def _jsonable(f: dict) -> dict:
    return {k: [list(x) if isinstance(x, tuple) else x for x in v] if isinstance(v, list) else v
            for k, v in f.items()}  # fmt: skip


def describe(res: SimRun) -> list[str]:
    """Human lines: sessions (steps, sway alerts, interval changes) and motor pulses."""
    lines = []
    for s in res.sessions:
        lines.append(
            f"session {s['id']}: {s['forward_steps']} forward, {s['backward_steps']} backward "
            f"steps, {s['sway_alerts']} sway alert(s), {s['duration_s']:.1f} s, "
            f"ended: {s['end_reason']}"
        )
        for rec in s["records"]:
            if rec["type"] == "sway_alert":
                side = "right" if rec["side"] > 0 else "left"
                lines.append(f"  {rec['t'] / 1000:8.2f} s  sway alert ({side}, "
                             f"{rec['roll'] / 10:.1f} deg)")  # fmt: skip
            elif rec["type"] == "interval":
                kind = r.KIND_NAMES.get(rec["kind"], "?")
                lines.append(f"  {rec['t'] / 1000:8.2f} s  interval -> {kind}")
            elif rec["type"] == "note":
                lines.append(f"  {rec['t'] / 1000:8.2f} s  note code {rec['code']} "
                             f"value {rec['value']}")  # fmt: skip
    if res.motor:
        lines.append("motor pulses (times since boot):")
    for t, length, duty in motor_pulses(res):
        lines.append(f"motor {t / 1000:8.2f} s  {length} ms at {duty} %")
    if res.live.get("errors"):
        lines.append(f"warning: {res.live['errors']} firmware task failure(s), restarted")
    return lines


def motor_pulses(res: SimRun) -> list[tuple[int, int, int]]:
    """(start ms, length ms, duty) of every motor pulse."""
    out, on = [], None
    for t, duty in res.motor:
        if on is not None:
            out.append((on[0], t - on[0], on[1]))
            on = None
        if duty:
            on = (t, duty)
    return out
