"""Transfers cut at many points: the flashing process SIGKILLed, or its port closed (a
cable pulled), after N bytes. Every time the board, power-cycled, still boots the old
version (or, for a cut after the switch, the new one: never anything else), and the next
flash completes, reusing what arrived intact.

The flash runs in a subprocess (``DRIVER``): it counts the bytes written to the port and
cuts at the given count; it also prints the byte positions around the switch (the
``/fw/state`` rename that makes the new version active), which is what tells whether a
cut came before or after it. The cut flashes use ``--full`` (every file over the wire),
so the cuts fall among real file transfers; versions alternate between two builds, so
each flash replaces the other. Every third cut is not followed by a power cycle: the
next flash then meets the interpreter the cut left (a half-written file still open).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from flash_support import copy_firmware, flash_api, mpremote, variant

from retrostep.flash.errors import TransferError
from retrostep.virtual_board import VirtualBoard

DRIVER = r"""
import os, signal, sys
from pathlib import Path
from retrostep.errors import RetrostepError
from retrostep.flash import Options, device, flash

port, fw, limit, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
write = device.CountingSerial.write

def cut_write(self, data):
    if 0 <= limit < self.sent + len(data):
        keep = max(0, limit - self.sent)
        if keep:
            write(self, data[:keep])
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        self._ser.close()  # the port goes away: the next write fails
    return write(self, data)

put = device.Connection.put_atomic

def traced_put(self, path, data):
    switch = path == "/fw/state" and b'"trial": true' in data
    if switch:
        print("S", self.bytes_sent, flush=True)
    put(self, path, data)
    if switch:
        print("E", self.bytes_sent, flush=True)

device.CountingSerial.write = cut_write
device.Connection.put_atomic = traced_put
try:
    rep = flash(Options(port=port, firmware=Path(fw), full=True, start_timeout=30))
except RetrostepError as e:
    print("ERR", type(e).__name__, e, flush=True)
    sys.exit(e.exit_code)
print("OK", rep.bytes_sent, rep.build.label, flush=True)
"""

CUT_FRACTIONS = (0.01, 0.04, 0.1, 0.17, 0.25, 0.33, 0.41, 0.5, 0.58, 0.66, 0.74, 0.82, 0.9,
                 0.97, 0.995)  # of the bytes sent before the switch  # fmt: skip
AFTER_SWITCH = (0.0, 0.5)  # of the bytes after the switch: just after it, while it restarts


def _drive(tmp: Path, port: str, fw: Path, limit: int, mode: str) -> tuple[int, dict]:
    script = tmp / "driver.py"
    if not script.exists():
        script.write_text(DRIVER)
    proc = subprocess.run([sys.executable, str(script), port, str(fw), str(limit), mode],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ),
                          check=False)  # fmt: skip
    seen: dict = {"out": proc.stdout + proc.stderr}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in ("S", "E"):
            seen[parts[0]] = int(parts[1])
        elif parts and parts[0] == "OK":
            seen["total"], seen["label"] = int(parts[1]), parts[2]
        elif parts and parts[0] == "ERR":
            seen["error"] = line
    return proc.returncode, seen


def _boots_into(vb: VirtualBoard) -> str:
    """Power-cycle the board; the version the loader reports running."""
    mark = vb.output_mark()
    vb.hard_reset()
    end = vb.wait_for(b"retrostep: running ", timeout=60, since=mark)
    vb.wait_for(b"\n", timeout=10, since=end)
    return vb.output(end).split()[0].decode()


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTEP_CONFIG_DIR", str(tmp_path / "config"))


def test_cut_transfers_leave_the_old_version_and_the_next_flash_completes(tmp_path):
    fw1 = copy_firmware(tmp_path / "fw1")
    fw2 = variant(fw1, tmp_path / "fw2", "retrostep_device/app.py", "FLASH_CUT_MARK = 2")
    with VirtualBoard(tmp_path / "flash.img") as vb:
        labels = {fw1: flash_api(vb.port, fw1).build.label}
        # the reference: an uncut full flash, for the byte positions
        rc, ref = _drive(tmp_path, vb.port, fw2, -1, "none")
        assert rc == 0 and "total" in ref, ref["out"]
        labels[fw2] = ref["label"]
        assert _boots_into(vb) == labels[fw2]
        limits = [int(ref["S"] * f) for f in CUT_FRACTIONS]
        limits += [ref["E"] + 1 + int((ref["total"] - ref["E"]) * f) for f in AFTER_SWITCH]
        old, new = fw2, fw1
        stats = {"before": 0, "during": 0, "after": 0, "reused": 0}
        for k, limit in enumerate(limits):
            mode = "kill" if k % 2 == 0 else "close"
            rc, seen = _drive(tmp_path, vb.port, new, limit, mode)
            cut = f"cut #{k} ({mode} at byte {limit})"
            if mode == "kill":
                assert rc == -signal.SIGKILL, f"{cut}: exit {rc}\n{seen['out']}"
            else:  # a clear error, no traceback
                assert rc == TransferError.exit_code, f"{cut}: exit {rc}\n{seen['out']}"
                assert re.match(r"ERR TransferError lost the connection to ", seen["error"])
                assert "Traceback" not in seen["out"]
            if k % 3 == 1:
                # No power cycle: the next flash meets the same interpreter, with whatever
                # the cut command left (an open file among its globals). What the board
                # would boot is read from its state, without a reset (mpremote resume).
                st = json.loads(mpremote(vb.port, "resume", "cat", ":fw/state").stdout)
                running = st["version"]
            else:
                running = _boots_into(vb)
            if "S" not in seen or limit <= seen["S"]:
                stats["before"] += 1
                assert running == labels[old], f"{cut}: boots {running}, not the old version"
            elif "E" in seen:
                stats["after"] += 1
                assert running == labels[new], f"{cut}: after the switch, boots {running}"
            else:  # within the switch command: one complete version or the other
                stats["during"] += 1
                assert running in (labels[old], labels[new]), f"{cut}: boots {running}"
            done = flash_api(vb.port, new)  # the next flash completes
            assert done.state.get("version", labels[new]) == labels[new]
            assert done.outcome in ("running", "up to date"), cut
            assert _boots_into(vb) == labels[new], f"after {cut} and a complete flash"
            if done.outcome == "running" and len(done.sent_files) < len(done.build.files):
                stats["reused"] += 1  # files that arrived before the cut were kept
            old, new = new, old
    assert stats["before"] >= len(CUT_FRACTIONS) - 1, stats
    assert stats["reused"] >= 3, stats
    print("cut stats:", stats)
