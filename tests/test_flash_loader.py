"""The loader (firmware/main.py) in the MicroPython unix port, on a LittleFS image mounted
at "/" as on the device: slot selection, trial, rollback at once on a failing start,
rollback after a crash loop, and the unchanged path without slots.

Each "boot" is a fresh ``micropython`` process: the harness reads the files to install
(if any) from the host, mounts the image at "/" (the host filesystem is gone from then
on, as on the device) and runs ``main.main()``; a reset is the next process on the same
image. The slots hold tiny stand-in apps with the real entry point's signature
(``retrostep_device.entry.main(started)``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from retrostep.runtime.micropython_port import micropython_executable

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"

HARNESS = r"""
import sys, os, vfs
import main
from retrostep_device.blockdev import FileBlockDevice

image, src = sys.argv[1], sys.argv[2]
files = []
if src != "-":
    def walk(d, rel):
        for name in sorted(os.listdir(d)):
            p = d + "/" + name
            if os.stat(p)[0] & 0x4000:
                files.append((rel + name, None))
                walk(p, rel + name + "/")
            else:
                with open(p, "rb") as f:
                    files.append((rel + name, f.read()))
    walk(src, "/")
bd = FileBlockDevice(image, 4096, 64)
try:
    fs = vfs.VfsLfs2(bd)
except OSError:
    vfs.VfsLfs2.mkfs(bd)
    fs = vfs.VfsLfs2(bd)
vfs.umount("/")
vfs.mount(fs, "/")
sys.path[:] = [""]  # the device's path: nothing from the host, nothing imported
for name in list(sys.modules):
    if name.startswith("retrostep_"):
        del sys.modules[name]
for name, data in files:
    if data is None:
        try:
            os.mkdir(name)
        except OSError:
            pass
    else:
        with open(name, "wb") as f:
            f.write(data)
try:
    main.main()
finally:
    try:
        with open("/fw/state") as f:
            print("STATE " + f.read())
    except OSError:
        print("STATE none")
"""

GOOD = """
import retrostep_device

def main(started=None):
    print("APP", retrostep_device.VERSION)
    if started is not None:
        started()
"""
BROKEN_IMPORT = "import retrostep_device.missing_module\n"
FAILS_AT_START = """
def main(started=None):
    raise OSError(19, "imu absent")
"""
RESETS = """
def main(started=None):
    raise SystemExit(3)  # the device resets (watchdog, crash) before it is healthy
"""
FAILS_LATER = """
def main(started=None):
    started()
    raise ValueError("late")
"""


def _slot(root: Path, slot: str, version: str, entry: str) -> None:
    pkg = root / "fw" / slot / "retrostep_device"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"VERSION = {version!r}\n")
    (pkg / "entry.py").write_text(entry)
    (root / "fw" / slot / "manifest.json").write_text(json.dumps({"version": version}))


def _state(root: Path, active: str, prev: str | None, trial: bool, version: str,
           prev_version: str | None, boots: int = 0) -> None:  # fmt: skip
    st = {"v": 1, "active": active, "prev": prev, "trial": trial, "boots": boots,
          "version": version, "prev_version": prev_version, "rollback": None}  # fmt: skip
    (root / "fw" / "state").write_text(json.dumps(st))


class Device:
    def __init__(self, tmp: Path):
        self.image = tmp / "flash.img"
        self.src = tmp / "src"
        self.src.mkdir()
        self.harness = tmp / "harness.py"
        self.harness.write_text(HARNESS)

    def boot(self, install: bool = False) -> tuple[list[str], dict | None, int]:
        env = {"MICROPYPATH": str(FIRMWARE), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        proc = subprocess.run(
            [micropython_executable(), str(self.harness), str(self.image),
             str(self.src) if install else "-"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        lines = (proc.stdout + proc.stderr).splitlines()
        st_line = [x for x in lines if x.startswith("STATE ")]
        assert st_line, lines
        text = st_line[-1][6:]
        try:
            st = json.loads(text)
        except ValueError:
            st = {"unreadable": text}
        return lines, None if text == "none" else st, proc.returncode


@pytest.fixture
def dev(tmp_path) -> Device:
    return Device(tmp_path)


def test_trial_version_runs_and_is_confirmed(dev):
    _slot(dev.src, "a", "1.0", GOOD)
    _slot(dev.src, "b", "2.0", GOOD)
    _state(dev.src, "b", "a", True, "2.0", "1.0")
    lines, st, rc = dev.boot(install=True)
    assert rc == 0, lines
    assert "APP 2.0" in lines
    assert "retrostep: running 2.0 (slot b)" in lines
    assert st["active"] == "b" and st["trial"] is False and st["boots"] == 0
    assert st["prev"] == "a"  # the previous version is kept
    lines, st, rc = dev.boot()  # the next reset: no trial any more
    assert "retrostep: starting 2.0 (slot b)" in lines and "APP 2.0" in lines


def test_import_error_rolls_back_at_once(dev):
    _slot(dev.src, "a", "1.0", GOOD)
    _slot(dev.src, "b", "2.0", BROKEN_IMPORT)
    _state(dev.src, "b", "a", True, "2.0", "1.0")
    lines, st, rc = dev.boot(install=True)
    assert rc == 0, lines
    roll = [x for x in lines if x.startswith("retrostep: rolled back to 1.0: ImportError")]
    assert roll, lines
    assert "missing_module" in roll[0]
    # the previous version ran in the same boot, from its own slot
    assert lines.index("APP 1.0") > lines.index(roll[0])
    assert "retrostep: running 1.0 (slot a)" in lines
    assert st["active"] == "a" and st["prev"] is None and st["trial"] is False
    assert st["rollback"]["from"] == "2.0" and st["rollback"]["to"] == "1.0"
    assert "ImportError" in st["rollback"]["error"]
    lines, st, _ = dev.boot()  # and stays there
    assert "APP 1.0" in lines and not any("rolled back" in x for x in lines)


def test_failing_start_rolls_back(dev):
    _slot(dev.src, "a", "1.0", GOOD)
    _slot(dev.src, "b", "2.0", FAILS_AT_START)
    _state(dev.src, "b", "a", True, "2.0", "1.0")
    lines, st, _ = dev.boot(install=True)
    assert any(x.startswith("retrostep: rolled back to 1.0: OSError") for x in lines), lines
    assert "APP 1.0" in lines and st["active"] == "a"


def test_crash_loop_rolls_back_after_max_boots(dev):
    _slot(dev.src, "a", "1.0", GOOD)
    _slot(dev.src, "b", "2.0", RESETS)
    _state(dev.src, "b", "a", True, "2.0", "1.0")
    boots = []
    for k in range(3):
        lines, st, rc = dev.boot(install=k == 0)
        assert rc == 3, lines  # the "reset"
        assert "APP 1.0" not in lines
        boots.append(st["boots"])
        assert st["active"] == "b" and st["trial"] is True
    assert boots == [1, 2, 3]
    lines, st, rc = dev.boot()  # the fourth start: rolled back before it runs
    assert rc == 0, lines
    assert "retrostep: rolled back to 1.0: not healthy after 3 starts" in lines
    assert "APP 1.0" in lines
    assert st["active"] == "a" and st["rollback"]["from"] == "2.0"


def test_confirmed_version_is_not_rolled_back(dev):
    """Only a version on trial goes back: a confirmed one that fails later is reported."""
    _slot(dev.src, "a", "1.0", GOOD)
    _slot(dev.src, "b", "2.0", FAILS_LATER)
    _state(dev.src, "b", "a", True, "2.0", "1.0")
    lines, st, rc = dev.boot(install=True)
    assert rc != 0 and any("ValueError: late" in x for x in lines)
    assert st["active"] == "b" and st["trial"] is False and st["rollback"] is None


def test_no_previous_version(dev):
    _slot(dev.src, "a", "1.0", BROKEN_IMPORT)
    _state(dev.src, "a", None, True, "1.0", None)
    lines, st, rc = dev.boot(install=True)
    assert rc == 0
    assert any(x.startswith("retrostep: 1.0 failed to start, no previous version: ImportError")
               for x in lines), lines  # fmt: skip
    assert st["active"] == "a" and st["rollback"]["to"] is None and st["trial"] is False


def test_incomplete_previous_slot_is_not_used(dev):
    """A previous slot without its manifest (being rewritten) is no fallback."""
    _slot(dev.src, "a", "1.0", GOOD)
    (dev.src / "fw" / "a" / "manifest.json").unlink()
    _slot(dev.src, "b", "2.0", BROKEN_IMPORT)
    _state(dev.src, "b", "a", True, "2.0", "1.0")
    lines, st, _ = dev.boot(install=True)
    assert any("failed to start, no previous version" in x for x in lines), lines
    assert "APP 1.0" not in lines


def test_unreadable_state_runs_a_complete_slot(dev):
    _slot(dev.src, "a", "1.0", GOOD)
    (dev.src / "fw" / "state").write_text("{not json")
    lines, _, _ = dev.boot(install=True)
    assert "retrostep: state unreadable, running slot a" in lines
    assert "APP 1.0" in lines


def test_boot_py_puts_the_active_slot_on_sys_path(dev, tmp_path):
    """boot.py alone (the raw-REPL soft reset) makes `import retrostep_device` the
    active slot's."""
    _slot(dev.src, "a", "1.0", GOOD)
    _slot(dev.src, "b", "2.0", GOOD)
    _state(dev.src, "b", "a", False, "2.0", "1.0")
    script = tmp_path / "bootcheck.py"
    script.write_text(HARNESS.replace("    main.main()", "    exec(open('/boot.py').read())\n"
                                      "    import retrostep_device\n"
                                      "    print('V', retrostep_device.VERSION)"))  # fmt: skip
    (dev.src / "boot.py").write_text((FIRMWARE / "boot.py").read_text())
    env = {"MICROPYPATH": str(FIRMWARE), "PATH": "/usr/bin:/bin"}
    cmd = [micropython_executable(), str(script), str(dev.image), str(dev.src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert "V 2.0" in proc.stdout.splitlines(), proc.stdout + proc.stderr


def test_without_slots_the_app_comes_from_sys_path(tmp_path):
    """`retrostep sim run` runs firmware/main.py from the source tree: no /fw/state, the
    app imported from sys.path, its live line printed as before."""
    env = {"MICROPYPATH": f".frozen:{tmp_path}", "PATH": "/usr/bin:/bin"}
    pkg = tmp_path / "retrostep_device"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VERSION = 'src'\n")
    (pkg / "entry.py").write_text(GOOD)
    (tmp_path / "main.py").write_text((FIRMWARE / "main.py").read_text())
    proc = subprocess.run([micropython_executable(), str(tmp_path / "main.py")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["APP src"]
