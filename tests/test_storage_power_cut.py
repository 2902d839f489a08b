"""Power cuts on the sim board's flash: LittleFS images written by the real MicroPython
unix port, killed with SIGKILL at 200 moments, booted again after every one.

Each image lives through a chain of boots, like a device. A boot mounts the image,
runs ``recover()``, reports every session (list and bytes) for this test to decode
with the host's copy of the one codec, plays the host (most boots mark the complete
sessions synced, so retention evicts them as the image fills; one stretch of boots
never does, so the image fills with unsynced sessions), then walks one session: a STEP
record per ~100 ms of simulated time, SECONDS every 10 s, the store flushing per its
2 s / 512 B rule and the script printing how many records are on flash after each
flush. Most boots are killed; the next boot's report is checked. Two chains run side by
side (each boot is a process; most of the time is process start-up).

Kill moments, three kinds:

* ``prog``: deterministic, inside the flash: the power fails at the n-th program or
  erase operation of the block device, leaving none or half of it written (a torn
  program, as on a real chip), n spread over the whole boot: recovery, the index,
  eviction, the HEADER, LittleFS commits and metadata compactions;
* ``flush``: SIGKILL as soon as the k-th "flushed" line is read (it lands a little
  later, wherever the script has got to);
* ``delay``: SIGKILL after a random delay from the start of the process.

After every kill: the image mounts; every record reported flushed decodes, and the
records present are exactly the first m appended (no gap, duplicate or reordering);
the session ends with END(reason recovered) whose totals match its records; at most
2 s of simulated time was lost (unless the flash was full); no torn or skipped bytes
(LittleFS commits are atomic); no unsynced session ever disappears; the index survives;
session ids are never reused.
"""

from __future__ import annotations

import binascii
import os
import random
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from retrostep.runtime.micropython_port import micropython_executable
from retrostep_core import records as r

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
BLOCKS = 32  # 128 KB image of 4 KB blocks
HEADROOM = 16384
CHAINS = 2  # images booted side by side (each boot is one process: most time is waiting)
MIN_CUTS = 200  # over all chains
MAX_RUNS = 170  # per chain
NO_SYNC = range(35, 75)  # the host stays away: the flash fills with unsynced sessions

MKFS = """
import sys, vfs
from retrostep_device.blockdev import FileBlockDevice
bd = FileBlockDevice(sys.argv[1], 4096, int(sys.argv[2]))
vfs.VfsLfs2.mkfs(bd)
bd.close()
print("OK")
"""

BOOT = """
import sys, vfs
from binascii import hexlify
from retrostep_core import records as r
from retrostep_device.blockdev import FileBlockDevice
from retrostep_device.storage import SessionStore

img = sys.argv[1]
seed, ticks, rate, cut_at, tear, headroom, sync = [int(a) for a in sys.argv[2:9]]
targets = [int(a) for a in sys.argv[9:]]


class CutDevice(FileBlockDevice):
    # Flash whose power fails during its cut_at-th program or erase: tear=1 leaves
    # half of that operation written, tear=0 none of it. Then it waits for SIGKILL.
    ops = 0

    def _cut(self, block_num, buf, offset):
        self.ops += 1
        if self.ops != cut_at:
            return
        if tear:
            FileBlockDevice.writeblocks(self, block_num, memoryview(buf)[: len(buf) // 2],
                                        offset or 0)
        print("P", self.ops, len(buf))
        sys.stdin.read(1)  # the power is gone: nothing more happens
        sys.exit(3)

    def writeblocks(self, block_num, buf, offset=None):
        self._cut(block_num, buf, offset)
        FileBlockDevice.writeblocks(self, block_num, buf, offset)

    def ioctl(self, op, arg):
        if op == 6:
            self._cut(arg, self._erased, 0)
        return FileBlockDevice.ioctl(self, op, arg)


# -- boot: mount, recover, show the test what is on flash, sync -------------------------
bd = CutDevice(img, 4096, None)
vfs.mount(vfs.VfsLfs2(bd), "/flash")
print("M")
st = SessionStore("/flash/logs", headroom=headroom)
print("I", int(st.rebuilt))
print("R", *st.recover())
print("ERR", st.err)
sessions = st.list_sessions()
for sid, size, synced, complete in sessions:
    print("S", sid, size, int(synced), int(complete))
for target in targets:
    off = 0
    while True:
        part = st.read_session(target, off, 2048)
        if not part:
            break
        print("D", target, hexlify(part).decode())
        off += len(part)
print("C")
if sync:  # the host has been: it has every complete session now
    for sid, size, synced, complete in sessions:
        if complete and not synced:
            print("y", sid)
            st.mark_synced(sid)
            print("Y", sid)
if not ticks:
    print("Z")
    sys.exit(0)

# -- a walk: a STEP record every ~100 ms of simulated time, SECONDS every 10 s ---------
sid = st.begin({"wall_start": seed, "fs_mhz": 52000, "firmware": "0.1.0"})
print("B", sid, int(st.full), st.err)
enc = r.Encoder()
state = [seed & 0x7FFFFFFF or 1]


def rnd(n):
    state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
    return (state[0] >> 8) % n


seq = 0
flushes = st.flushes
said_full = False
fwd = bwd = 0


def flushed(t):
    global flushes
    if st.flushes != flushes:
        flushes = st.flushes
        if st.pending() == 0 and not st.full:
            print("F", seq, t)  # records 0 .. seq-1 are on flash


for k in range(ticks):
    t = 100 * k
    for _ in range(1 + rnd(rate)):
        d = -1 if seq % 3 == 2 else 1
        st.append(enc.step(t, d, seq % 1000))
        seq += 1
        if d < 0:
            bwd += 1
        else:
            fwd += 1
        flushed(t)
    if k % 10 == 9:
        out = enc.add_second(t - 900, fwd, bwd, 1000, 45, 120, True, r.KIND_FORWARD)
        fwd = bwd = 0
        if out is not None:
            st.append(out)
            flushed(t)
    st.tick(t)
    flushed(t)
    if st.full and not said_full:
        said_full = True
        print("X", st.err)
    print("A", seq, t)
out = enc.flush_seconds()
if out is not None:
    st.append(out)
st.end({"t": 100 * ticks, "forward": seq - seq // 3, "backward": seq // 3,
        "reason": r.END_BUTTON})
print("E", st.flushes)
print("N", bd.ops)
"""


def _env() -> dict[str, str]:
    return {"MICROPYPATH": f".frozen:{FIRMWARE}", "PATH": "/usr/bin:/bin"}


def _lines(text: str) -> list[list[str]]:
    """Complete output lines, split; a line cut by the kill is dropped."""
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [line.split() for line in text.splitlines() if line.strip()]


def _boot(exe: str, script: Path, img: Path, args: list[int], mode: str, at: float):
    """Boot the sim board once (recover, report, sync, walk); kill it per ``mode``.

    Returns (lines, killed, seconds, seconds until the image was mounted)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [exe, str(script), str(img), *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    killed = threading.Event()

    def kill() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed.set()

    timer = threading.Timer(at, kill) if mode == "delay" else None
    if timer:
        timer.start()
    out = []
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    flushes = 0
    mounted = 0.0
    for line in proc.stdout:
        out.append(line)
        if not mounted and line.startswith("M"):
            mounted = time.perf_counter() - t0
        if mode == "prog" and line.startswith("P "):
            kill()
        elif mode == "flush" and line.startswith("F "):
            flushes += 1
            if flushes == at:
                kill()
    if timer:
        timer.cancel()
    err = proc.stderr.read()
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()
    rc = proc.returncode
    assert rc in (0, -signal.SIGKILL), f"boot failed ({rc}): {err[-800:]}"
    killed_it = killed.is_set() and rc == -signal.SIGKILL
    return _lines("".join(out)), killed_it, time.perf_counter() - t0, mounted


def _first(lines: list[list[str]], tag: str) -> list[str] | None:
    for line in lines:
        if line[0] == tag:
            return line
    return None


def _last(lines: list[list[str]], tag: str) -> list[str] | None:
    for line in reversed(lines):
        if line[0] == tag:
            return line
    return None


def _walk_part(lines: list[list[str]]) -> list[list[str]]:
    """The lines of a boot from its session on (after the report and the sync)."""
    for i, line in enumerate(lines):
        if line[0] == "B":
            return lines[i:]
    return []


def _verify_session(data: bytes, walk, complete: bool, stats) -> None:
    """Checks on one session after the boot that recovered it (module docstring)."""
    sid, wrote, killed, ticks = walk["sid"], walk["lines"], walk["killed"], walk["ticks"]
    rep = r.decode_report(data)
    recs = rep["records"]
    assert recs and recs[0][0] == r.HEADER and recs[0][1]["session_id"] == sid
    assert rep["skipped_bytes"] == 0 and rep["torn_bytes"] == 0, rep  # atomic commits
    assert rep["ended_cleanly"] == complete
    end = recs[-1][1] if complete else None
    last_a = _last(wrote, "A")
    finished = last_a is not None and int(last_a[2]) == 100 * (ticks - 1)
    recovered = end is not None and end["reason"] == r.END_RECOVERED
    if killed and end is not None and not (finished and end["reason"] == r.END_BUTTON):
        assert recovered, end
    stats["recovered"] += recovered
    steps = [f for k, f in recs if k == r.STEP]
    # exactly the first m records appended: no gap, no duplicate, no reordering
    for j, f in enumerate(steps):
        assert f["confidence"] == j % 1000 and f["direction"] == (-1 if j % 3 == 2 else 1), j
    m = len(steps)
    last_f = _last(wrote, "F")
    if last_f is not None:
        assert m >= int(last_f[1]), ("flushed records lost", m, last_f)
    x = _first(wrote, "X")
    if x is not None or wrote[0][2] == "1":
        stats["full_sessions"] += 1
        if x is not None and x[1] == "None" and killed:
            # the NOTE went to flash (into the reserve) before "X" was printed
            assert r.NOTE_STORAGE_FULL in [f["code"] for k, f in recs if k == r.NOTE]
    elif last_a is not None and recovered:
        lost = int(last_a[2]) - (steps[-1]["t"] if steps else -100)
        assert lost <= 2000, ("more than 2 s of simulated time lost", lost)
        stats["max_lost_ms"] = max(stats["max_lost_ms"], lost)
    if recovered:
        assert end["forward"] == sum(1 for f in steps if f["direction"] > 0)
        assert end["backward"] == sum(1 for f in steps if f["direction"] < 0)
        ts = [f["t"] for k, f in recs[:-1] if k not in (r.HEADER, r.SECONDS)] + [
            s["t"] + 1000 for k, f in recs if k == r.SECONDS for s in f["seconds"]
        ]
        assert end["t"] == max(ts, default=0)
    stats["records_checked"] += m
    stats["sessions_checked"] += 1


def _chain(exe: str, boot: Path, img: Path, seed: int, min_cuts: int, stats: dict) -> None:
    """Boot one image again and again, killing most boots, checking after each."""
    rng = random.Random(seed)
    unsynced: set[int] = set()  # sessions the host never had: must never disappear
    listed_ever: set[int] = set()
    pending: list[dict] = []  # walks whose session the next complete report shows
    last_sid = 0
    ops_known = 2000  # program/erase operations of a boot (updated as boots complete)
    boot_s = 0.08  # wall time of a boot (updated too)
    mount_s = 0.04  # time until the image is mounted (the host process starts first)
    cuts = 0
    run = 0
    while True:
        final = cuts >= min_cuts or run >= MAX_RUNS
        ticks = 0 if final else rng.randint(150, 600)
        rate = rng.choice((1, 1, 2, 3))
        walk_seed = rng.randrange(1, 2**31)
        roll = rng.random()
        cut_at, tear, at = 0, 0, 0.0
        if run == 0 or final:
            mode = "none"  # first boot: a whole session, to calibrate; last: report only
        elif roll < 0.4:
            mode = "prog"
            cut_at = rng.randint(1, int(ops_known * 1.1))
            tear = rng.randint(0, 1)
        elif roll < 0.75:
            mode = "flush"
            at = rng.randint(1, max(1, ticks // 20))
        else:
            mode = "delay"
            at = rng.uniform(0.8 * mount_s, boot_s * 1.1)
        sync = run not in NO_SYNC and rng.random() < 0.8
        args = [walk_seed, ticks, rate, cut_at, tear, HEADROOM, int(sync)]
        args += [w["sid"] for w in pending]
        lines, killed, secs, mounted = _boot(exe, boot, img, args, mode, at)
        where = f"{img.name} run {run} mode {mode} args {args} at {at}"
        if not lines or lines[0] != ["M"]:
            assert killed, f"{where}: the image did not mount"
            lines = []  # killed before the board was up
        if killed:
            cuts += 1
            stats["cuts"] += 1
            stats[mode] += 1
            stats["prog_torn"] += mode == "prog" and tear
        else:
            stats["completed"] += 1
            n = _last(lines, "N")
            if n is not None:
                ops_known = int(n[1])
                boot_s = 0.7 * boot_s + 0.3 * secs
                mount_s = 0.7 * mount_s + 0.3 * mounted
        if _first(lines, "C") is not None:  # the report is complete: check it
            if run > 0:
                assert _first(lines, "I") == ["I", "0"], f"{where}: the index was lost"
            err = _first(lines, "ERR")[1]
            listed = {int(x[1]): x for x in lines if x[0] == "S"}
            for x in listed.values():
                assert x[4] == "1" or err == "28", f"{where}: a session left without END {x}"
            missing = unsynced - set(listed)
            assert not missing, f"{where}: unsynced sessions deleted: {missing}"
            stats["evicted"] += len(listed_ever - set(listed))
            listed_ever = set(listed)
            for walk in pending:
                sid = walk["sid"]
                if sid not in listed:
                    # never committed: only possible if the flash was full at begin
                    assert walk["lines"][0][2] == "1", f"{where}: session {sid} vanished"
                    unsynced.discard(sid)
                    continue
                data = binascii.unhexlify(
                    "".join(x[2] for x in lines if x[0] == "D" and x[1] == str(sid))
                )
                assert len(data) == int(listed[sid][2])
                try:
                    _verify_session(data, walk, listed[sid][4] == "1", stats)
                except AssertionError as e:
                    raise AssertionError(f"{where}: session {sid} of {walk['where']}: {e}") from e
            pending = []
            for x in lines:
                if x[0] == "y":  # being marked synced: from now on it may be evicted
                    unsynced.discard(int(x[1]))
        walk_lines = _walk_part(lines)
        if walk_lines:
            sid = int(walk_lines[0][1])
            assert sid > last_sid, f"{where}: session id {sid} reused"
            last_sid = sid
            unsynced.add(sid)
            pending.append(
                {"sid": sid, "lines": walk_lines, "killed": killed, "ticks": ticks, "where": where}
            )
        elif killed:
            stats["cut_before_walk"] += 1
        stats["boots"] += 1
        if final:
            break
        run += 1
    assert not pending, f"{img.name}: the last report did not show every session"


def test_power_cuts_never_lose_flushed_records(tmp_path: Path) -> None:
    try:
        exe = micropython_executable()
    except Exception as e:  # noqa: BLE001 - any reason the port is missing
        pytest.skip(str(e))
    boot = tmp_path / "boot.py"
    boot.write_text(BOOT)
    mkfs = tmp_path / "mkfs.py"
    mkfs.write_text(MKFS)
    images = [tmp_path / f"flash{k}.img" for k in range(CHAINS)]
    for img in images:
        proc = subprocess.run(
            [exe, str(mkfs), str(img), str(BLOCKS)], capture_output=True, text=True, env=_env()
        )
        assert proc.stdout.strip() == "OK", proc.stderr
        assert img.stat().st_size == BLOCKS * 4096

    stats = {"cuts": 0, "prog": 0, "prog_torn": 0, "flush": 0, "delay": 0, "completed": 0,
             "cut_before_walk": 0, "recovered": 0, "full_sessions": 0, "evicted": 0,
             "max_lost_ms": 0, "sessions_checked": 0, "records_checked": 0, "boots": 0}  # fmt: skip
    started = time.perf_counter()
    per_chain = -(-MIN_CUTS // CHAINS)
    # The chains share ``stats``; += on an int from two threads can race, so each chain
    # counts into its own dict and they are summed.
    parts = [dict.fromkeys(stats, 0) for _ in images]
    with ThreadPoolExecutor(CHAINS) as pool:
        futures = [
            pool.submit(_chain, exe, boot, img, 20260705 + k, per_chain, parts[k])
            for k, img in enumerate(images)
        ]
        for f in futures:
            f.result()
    for part in parts:
        for key, v in part.items():
            stats[key] = max(stats[key], v) if key == "max_lost_ms" else stats[key] + v
    stats["seconds"] = round(time.perf_counter() - started, 1)
    print("power-cut chains:", stats)
    report = os.environ.get("RETROSTEP_POWER_CUT_REPORT")
    if report:
        Path(report).write_text(repr(stats) + "\n")
    assert stats["cuts"] >= MIN_CUTS, stats
    assert stats["prog"] >= 50 and stats["flush"] >= 50 and stats["delay"] >= 20, stats
    assert stats["full_sessions"] > 0 and stats["evicted"] > 0, stats
