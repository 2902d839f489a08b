"""Type-check the firmware against the MicroPython ESP32 stubs (not CPython's stdlib).

The stubs are installed once into .cache/stubs (they replace the standard library's
type information, so they must not go into the project's virtual environment), then
mypy runs with them as its typeshed. Errors inside the stub files themselves are not
ours and are silenced per module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STUBS = "micropython-esp32-stubs==1.29.0.post1"
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "stubs"
CONFIG = """\
[mypy]
python_version = 3.11
no_site_packages = True
check_untyped_defs = True
warn_unused_ignores = False
[mypy-_mpy_shed.*,machine,vfs,bluetooth,network,esp32,esp]
ignore_errors = True
"""


def ensure_stubs() -> Path:
    marker = CACHE / (".installed-" + STUBS.replace("==", "-"))
    if not marker.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--upgrade",
             "--target", str(CACHE), STUBS],
            check=True,
        )  # fmt: skip
        marker.touch()
    return CACHE


def main() -> int:
    stubs = ensure_stubs()
    cfg = ROOT / ".cache" / "mypy-firmware.ini"
    cfg.write_text(CONFIG)
    cmd = [
        sys.executable, "-m", "mypy",
        "--config-file", str(cfg),
        "--custom-typeshed-dir", str(stubs),
        "--cache-dir", str(ROOT / ".cache" / "mypy-firmware"),
        str(ROOT / "firmware"),
    ]  # fmt: skip
    env = {"MYPYPATH": str(stubs), "PATH": "/usr/bin:/bin"}
    return subprocess.run(cmd, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
