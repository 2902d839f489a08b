"""The app at its limits, on the sim board with the unmodified firmware (``main.py`` in
the MicroPython unix port): a battery that runs low during a walk, and a flash that is
full of data the host has not synced. Both must be signalled (a distinct haptic pattern,
a NOTE in the log where there is room for one) and neither may stop the counting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from retrostep import sim, synth
from retrostep.pipeline_io import run_cpython, trace_to_int_samples
from retrostep.runtime.micropython_port import micropython_executable
from retrostep_core import haptic_patterns as hp
from retrostep_core import records as r

EXE = micropython_executable()  # the unix port is a test dependency: fail loudly if absent
FS_HZ = 52.0
STRENGTH = 80  # the default config's haptic strength (percent)

FILL = """
import sys, vfs, os
from retrostep_device.blockdev import FileBlockDevice, DEFAULT_BLOCK_COUNT
bd = FileBlockDevice(sys.argv[1], 4096, DEFAULT_BLOCK_COUNT)
try:
    fs = vfs.VfsLfs2(bd)
except OSError:
    vfs.VfsLfs2.mkfs(bd)
    fs = vfs.VfsLfs2(bd)
vfs.mount(fs, "/flash")
chunk = bytes(4000)
n = 0
try:  # files that are not logs (a file per block: one cut short by ENOSPC is lost)
    while True:
        with open("/flash/filler%d" % n, "wb") as f:
            f.write(chunk)
        n += 1
except OSError as e:
    print("ENOSPC after", n, e)
for k in range(int(sys.argv[2])):  # then give back this many blocks
    n -= 1
    os.remove("/flash/filler%d" % n)
print("free blocks", os.statvfs("/flash")[3], "fillers",
      sum(1 for x in os.listdir("/flash") if x.startswith("filler")))
vfs.umount("/flash")
"""


@pytest.fixture(scope="module")
def walk(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("limits")
    segs = [synth._st(2), synth._w(45), synth._b(25), synth._st(3)]
    trace, _ = synth.synthesize(segs, synth.make_person(3), fs_hz=FS_HZ, seed=5)
    samples = tmp / "walk.i32"
    trace_to_int_samples(trace).astype("<i4").tofile(samples)
    steps = run_cpython(trace).steps()  # what `retrostep analyze` counts
    return {"tmp": tmp, "samples": samples,
            "forward": sum(s["direction"] == "forward" for s in steps),
            "backward": sum(s["direction"] == "backward" for s in steps)}  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["MICROPYPATH"] = ".frozen:" + str(sim.firmware_dir())
    return env


def _boot(w: dict, image: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [EXE, str(sim.firmware_dir() / "main.py"), "--samples", str(w["samples"]),
           "--fs", repr(FS_HZ), "--image", str(image), *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    return proc


def _live(out: str) -> list[int]:
    last = out.splitlines()[-1].split()
    assert last[0] == "L", out[-500:]
    return [int(x) for x in last[1:]]


def _pattern_starts(out: str, pattern: hp.Pattern) -> list[int]:
    """Start times (ms) of every full rendition of ``pattern`` in the ``M t duty`` log."""
    changes = [(int(p[1]), int(p[2])) for p in (x.split() for x in out.splitlines())
               if len(p) == 3 and p[0] == "M"]  # fmt: skip
    pulses = []
    for (t, duty), (t2, _) in zip(changes, changes[1:], strict=False):
        if duty:
            pulses.append((t, t2 - t, duty))
    duty = pattern.intensity * STRENGTH // 100
    want = [on for on, _ in pattern.pulses]
    starts = []
    for i in range(len(pulses) - len(want) + 1):
        run = pulses[i : i + len(want)]
        if all(p[2] == duty and p[1] == on for p, on in zip(run, want, strict=True)):
            starts.append(run[0][0])
    return starts


def test_low_battery_buzzes_once_notes_it_and_counting_goes_on(walk, tmp_path):
    # 3.9 V at boot, 3.4 V from 30 s: the app reads the battery once a minute
    proc = _boot(walk, tmp_path / "flash.img", "--battery", "0:3900", "--battery", "30000:3400")
    fwd, bwd, _, _, errors = _live(proc.stdout)
    assert (fwd, bwd, errors) == (walk["forward"], walk["backward"], 0)
    starts = _pattern_starts(proc.stdout, hp.LOW_BATTERY)
    assert len(starts) == 1 and 60000 <= starts[0] < 61000, starts
    (s,) = sim.read_sessions(str(tmp_path / "flash.img"))
    notes = [n for n in s["notes"] if n["code"] == r.NOTE_LOW_BATTERY]
    assert [n["value"] for n in notes] == [3400]
    assert (s["forward_steps"], s["backward_steps"]) == (fwd, bwd)


def test_full_flash_of_unsynced_data_keeps_counting_and_signals_it(walk, tmp_path):
    image = tmp_path / "full.img"
    fill = tmp_path / "fill.py"
    fill.write_text(FILL)
    out = subprocess.run([EXE, str(fill), str(image), "0"], capture_output=True, text=True,
                         env=_env(), timeout=120, check=True).stdout  # fmt: skip
    assert "ENOSPC" in out, out
    proc = _boot(walk, image)
    fwd, bwd, _, _, errors = _live(proc.stdout)
    # the device went on counting: the live counters are the whole walk
    assert (fwd, bwd, errors) == (walk["forward"], walk["backward"], 0)
    assert len(_pattern_starts(proc.stdout, hp.STORAGE_FULL)) == 1
    # the image still mounts; with less than half the reserve free no session file is
    # started (HEADER, NOTE and END would not fit); nothing was deleted to make room
    assert sim.read_sessions(str(image)) == []
    check = subprocess.run([EXE, "-c", (
        "import vfs, os\n"
        "from retrostep_device.blockdev import FileBlockDevice\n"
        f"vfs.mount(vfs.VfsLfs2(FileBlockDevice({str(image)!r}, 4096, None)), '/f')\n"
        "print(sum(1 for x in os.listdir('/f') if x.startswith('filler')))\n")],
        capture_output=True, text=True, env=_env(), timeout=60, check=True)  # fmt: skip
    assert int(check.stdout.split()[-1]) == int(out.split()[-1])
