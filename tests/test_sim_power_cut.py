"""Power cuts of the whole app: the unmodified firmware (``firmware/main.py`` on the sim
board, the command line ``retrostep sim run`` builds) walks a synthesized session and is
SIGKILLed at 200+ moments; after every cut it boots again on the same LittleFS image with
an empty trace (the app's boot-time ``store.recover()`` runs) and the image is read back
with ``sim.read_sessions`` (the host's copy of the codec).

The walk (52 Hz, forward with a sway episode, then backward) is replayed at ``SPEED``
times real time, so a run lasts a few hundred ms; the board prints ``P t light`` once a
batch is processed (t: board ms, the end of that batch), which is how the test aims and
knows how far the app had got (``done``) when it sent SIGKILL. Kill moments (seeded):

* ``early``: before the first record reaches the flash (from boot to just after the
  first data flush), so HEADER-only sessions and kills before ``begin``;
* ``walk``: anywhere in the session;
* ``end``: after the last batch, a few ms into the shutdown: while the app flushes its
  encoder and writes END, or just after.

After every cut: the image mounts; the sessions from before the cut are unchanged; a
session the cut interrupted decodes without damaged bytes and ends with END; its records
are a prefix of the uninterrupted reference run's (no record beyond, none different);
END reason ``recovered`` with totals that match its records, or the app's own END
(``power``) identical to the reference if the cut came after it; every record the app
handed to the store at least ``FLUSH_SLACK_MS`` before ``done`` is on flash (the store's
2 s flush rule plus one tick). Which records were handed over when comes from a reference
run through ``tests/tools/sim_store_schedule.py`` (``main.py`` with the store's
``append`` instrumented); the runs that are killed are plain ``main.py``.

Steps: the app writes a WINDOW record every 2 s and flushes the store with it, so every
step the pipeline had released to the app at least ``FLUSH_SLACK_MS`` before the cut is
on flash (release times from the same reference run: ``S`` lines). The loss counted
from the step's contact time is printed too: it adds the pipeline's own decision delay
(a bout's first steps are released when the bout is confirmed, up to ~3.6 s later).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from retrostep import sim, synth
from retrostep.pipeline_io import trace_to_int_samples
from retrostep.runtime.micropython_port import micropython_executable

EXE = micropython_executable()  # the unix port is a test dependency: fail loudly if absent

TOOL = Path(__file__).resolve().parent / "tools" / "sim_store_schedule.py"
FS_HZ = 52.0
SPEED = 250.0  # x real time: 2 ms of sleep per 0.5 s batch, a run takes ~0.4 s
MIN_CUTS = 200  # over all chains
CHAINS = 2  # images killed side by side
PER_IMAGE = 15  # cuts per image before a fresh one
FLUSH_SLACK_MS = 2000 + 500  # the store's 2 s flush rule + one tick (a 0.5 s batch)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["MICROPYPATH"] = ".frozen:" + str(sim.firmware_dir())
    return env


def _cmd(script: Path, samples: Path, image: Path, speed: float) -> list[str]:
    return [EXE, str(script), "--samples", str(samples), "--fs", repr(FS_HZ),
            "--image", str(image), "--speed", repr(float(speed))]  # fmt: skip


def _steps(records: list[dict]) -> list[tuple[int, int]]:
    return sorted((t, d) for rec in records if rec["type"] in ("steps", "window")
                  for t, d in rec["steps"])  # fmt: skip


@pytest.fixture(scope="module")
def walk(tmp_path_factory) -> dict:
    """The trace as the sim board's int32 file, the reference session and its schedule."""
    tmp = tmp_path_factory.mktemp("simcut")
    segs = [
        synth._st(2),
        synth._w(32, sway=[synth._sw(12, 15, "left", 1.6)]),
        synth._b(22, sway=[synth._sw(9, 18, "right", 2.0)]),
        synth._st(3),
    ]
    trace, _ = synth.synthesize(segs, synth.make_person(5), fs_hz=FS_HZ, seed=11)
    samples = tmp / "walk.i32"
    ints = trace_to_int_samples(trace)
    ints.astype("<i4").tofile(samples)
    empty = tmp / "empty.i32"
    empty.write_bytes(b"")
    total_ms = len(ints) * 1000 // int(FS_HZ)
    main = sim.firmware_dir() / "main.py"

    # the schedule: when each frame reached the store (board ms), speed 0
    out = subprocess.run(_cmd(TOOL, samples, tmp / "sched.img", 0), capture_output=True,
                         text=True, env=_env(), check=True).stdout  # fmt: skip
    lines = [x.split() for x in out.splitlines()]
    t0 = next(int(x[1]) for x in lines if x[0] == "O")
    begin_ms = next(int(x[1]) for x in lines if x[0] == "B")
    appends = [int(x[1]) for x in lines if x[0] == "A"]
    released = {int(x[2]): int(x[1]) for x in lines if x[0] == "S"}  # contact -> release
    sched = sim.read_sessions(str(tmp / "sched.img"))
    # the reference: plain main.py, uninterrupted, at the speed the cuts use
    subprocess.run(_cmd(main, samples, tmp / "ref.img", SPEED), capture_output=True,
                   env=_env(), check=True)  # fmt: skip
    ref = sim.read_sessions(str(tmp / "ref.img"))
    assert len(ref) == 1 and len(sched) == 1
    recs = ref[0]["records"]
    assert sched[0]["records"] == recs  # instrumenting and speed change nothing logged
    assert recs[0]["type"] == "header" and recs[-1]["type"] == "end"
    assert ref[0]["end_reason"] == "power" and ref[0]["damaged_bytes"] == 0
    assert len(appends) == len(recs) - 2  # one append per record between HEADER and END
    assert ref[0]["sway_alerts"] >= 1 and ref[0]["backward_steps"] > 10
    return {"samples": samples, "empty": empty, "main": main, "total_ms": total_ms,
            "t0": t0, "begin_ms": begin_ms, "appends": appends, "records": recs,
            "steps": _steps(recs), "released": released}  # fmt: skip


def _kill_run(w: dict, image: Path, mode: str, target: int, delay: float) -> tuple[bool, int]:
    """Run main.py and SIGKILL it at the chosen moment: (killed, done ms)."""
    proc = subprocess.Popen(_cmd(w["main"], w["samples"], image, SPEED), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=_env())  # fmt: skip
    done = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        parts = line.split()
        if len(parts) != 3 or parts[0] != "P":
            continue
        t = int(parts[1])
        if parts[2] == "light":
            done = max(done, t)  # every batch up to t is processed (and ticked)
            if mode != "end" and t >= target:
                break
        elif mode == "end" and t >= w["total_ms"]:  # the last read: shutdown follows
            done = t
            time.sleep(delay)
            break
    proc.send_signal(signal.SIGKILL)  # no-op if it has already exited
    # what it printed before it died: the board writes each line at once, so the last
    # ``P t light`` read here is how far it got (the cut fell before the next batch ended)
    for line in proc.stdout.read().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "P" and parts[2] == "light":
            done = max(done, int(parts[1]))
    proc.stdout.close()
    rc = proc.wait(timeout=30)
    assert rc in (0, -signal.SIGKILL), f"main.py exited with {rc}"
    return rc == -signal.SIGKILL, done


def _check(w: dict, sessions: list[dict], prev: list[dict], done: int, stats: dict) -> None:
    assert sessions[: len(prev)] == prev, "a session from before the cut changed"
    new = sessions[len(prev) :]
    assert len(new) <= 1
    if not new:
        assert done < w["begin_ms"], f"no session, but the app had got to {done} ms"
        stats["no_session"] += 1
        return
    s = new[0]
    ref = w["records"]
    recs = s["records"]
    assert s["damaged_bytes"] == 0 and s["ended_cleanly"], s
    assert recs[0] == {**ref[0], "session_id": s["id"]}
    assert recs[-1]["type"] == "end"
    body = recs[1:-1]
    m = len(body)
    assert body == ref[1 : 1 + m], "the records on flash are not a prefix of the reference"
    if s["end_reason"] == "power":  # the cut came after the app's own END
        assert recs[1:] == ref[1:]
        stats["after_end"] += 1
        return
    assert s["end_reason"] == "recovered", s["end_reason"]
    end = recs[-1]
    assert (end["forward"], end["backward"]) == (s["forward_steps"], s["backward_steps"])
    assert end["alerts"] == s["sway_alerts"]
    stats["recovered"] += 1
    stats["header_only"] += m == 0
    appends = w["appends"]
    must = sum(1 for a in appends if a <= done - FLUSH_SLACK_MS)
    assert m >= must, f"{must - m} record(s) handed to the store >= 2.5 s before the cut lost"
    if m < len(appends) and appends[m] <= done:  # the store lost a record it had
        stats["store_lost_some"] += 1
        stats["max_store_loss_ms"] = max(stats["max_store_loss_ms"], done - appends[m])
    k = s["forward_steps"] + s["backward_steps"]
    steps = w["steps"]
    assert steps[:k] == _steps(recs)
    if k < len(steps):
        released = w["released"][steps[k][0]]  # the first step missing from flash
        assert released > done - FLUSH_SLACK_MS, (
            f"a step released to the app at {released} ms was lost in a cut at {done} ms")
        if released <= done:
            stats["max_released_loss_ms"] = max(stats["max_released_loss_ms"],
                                                done - released)  # fmt: skip
        if w["t0"] + steps[k][0] <= done:  # taken before the cut, not on flash
            age = done - w["t0"] - steps[k][0]
            stats["max_step_loss_ms"] = max(stats["max_step_loss_ms"], age)


def _chain(w: dict, tmp: Path, seed: int, cuts_wanted: int, stats: dict) -> None:
    rng = random.Random(seed)
    image = None
    prev: list[dict] = []
    attempts = 0
    while stats["cuts"] < cuts_wanted:
        attempts += 1
        assert attempts < 2 * cuts_wanted, f"too few runs were killed: {stats}"
        if image is None or stats["cuts"] % PER_IMAGE == 0 and prev:
            image = tmp / f"chain{seed}-{attempts}.img"  # a fresh (blank) image
            prev = []
        roll = rng.random()
        mode = "early" if roll < 0.25 else "walk" if roll < 0.85 else "end"
        target = {"early": rng.randint(0, w["appends"][0] + FLUSH_SLACK_MS),
                  "walk": rng.randint(0, w["total_ms"]), "end": w["total_ms"]}[mode]  # fmt: skip
        delay = rng.uniform(0, 0.006)
        killed, done = _kill_run(w, image, mode, target, delay)
        where = f"seed {seed} attempt {attempts} mode {mode} target {target} done {done}"
        if killed:
            stats["cuts"] += 1
            stats[mode] += 1
        else:
            stats["completed"] += 1
        # the next boot: an empty trace, so the app only mounts, recovers and powers off
        boot = subprocess.run(_cmd(w["main"], w["empty"], image, 0), capture_output=True,
                              text=True, env=_env(), timeout=60)  # fmt: skip
        assert boot.returncode == 0, f"{where}: the boot after the cut failed: {boot.stderr}"
        assert boot.stdout.splitlines()[-1] == "L 0 0 0 0 0", f"{where}: {boot.stdout}"
        sessions = sim.read_sessions(str(image))  # raises if the image does not mount
        try:
            _check(w, sessions, prev, done, stats)
        except AssertionError as e:
            raise AssertionError(f"{where}: {e}") from e
        prev = sessions


def test_app_power_cuts(walk, tmp_path: Path) -> None:
    keys = ("cuts", "early", "walk", "end", "completed", "no_session", "header_only",
            "recovered", "after_end", "store_lost_some", "max_store_loss_ms",
            "max_released_loss_ms", "max_step_loss_ms")  # fmt: skip
    parts = [dict.fromkeys(keys, 0) for _ in range(CHAINS)]
    started = time.perf_counter()
    per_chain = -(-MIN_CUTS // CHAINS)
    with ThreadPoolExecutor(CHAINS) as pool:
        futures = [pool.submit(_chain, walk, tmp_path, 20261121 + k, per_chain, parts[k])
                   for k in range(CHAINS)]  # fmt: skip
        for f in futures:
            f.result()
    stats = {k: (max if k.startswith("max") else sum)(p[k] for p in parts) for k in keys}
    stats["seconds"] = round(time.perf_counter() - started, 1)
    print("app power cuts:", stats)
    assert stats["cuts"] >= MIN_CUTS, stats
    # the moments must be spread: before the session, HEADER only, mid-walk, during END
    assert stats["no_session"] + stats["header_only"] >= 10, stats
    assert stats["recovered"] >= 100 and stats["end"] >= 15, stats
    # every step released >= 2.5 s before a cut survived it (checked per cut above);
    # the cuts must have caught steps in flight for that to mean something
    assert stats["max_released_loss_ms"] > 0, stats
