"""Helpers shared by the `retrostep flash` tests (tests/test_flash*.py): firmware trees
to flash, the flasher's API, real mpremote against a virtual board."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from retrostep.flash import Options, Report, flash

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"


def copy_firmware(dst: Path, src: Path = FIRMWARE) -> Path:
    """A snapshot of a firmware tree (the tests flash and modify their own copies)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def variant(base: Path, dst: Path, module: str, append: str) -> Path:
    """``base`` with ``append`` added at the end of ``module`` (a path in the tree)."""
    copy_firmware(dst, base)
    with open(dst / module, "a") as f:
        f.write("\n" + append + "\n")
    return dst


def flash_api(port: str, firmware: Path, **kw) -> Report:
    return flash(Options(port=port, firmware=firmware, start_timeout=kw.pop("start_timeout", 30),
                         **kw))  # fmt: skip


def mpremote(port: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real mpremote command line, as a user would run it."""
    proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc
