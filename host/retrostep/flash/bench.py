"""Flashing figures for the benchmark: a full flash of a blank virtual board, an
incremental one (one module changed), a no-change one; bytes on the wire and wall time;
the firmware's size compiled versus source. ``flash_section()`` gives the markdown;
alone:

    python -m retrostep.flash.bench
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from ..sim import firmware_dir
from ..virtual_board import VirtualBoard
from . import Options, flash
from .build import build

CHANGED = "retrostep_core/sway.py"  # the module the incremental flash changes
BAUD = 115200  # a real ESP32's USB-UART; 10 bits a byte on the wire


def _flash(port: str, fw: Path) -> dict:
    t0 = time.perf_counter()
    rep = flash(Options(port=port, firmware=fw, start_timeout=60))
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "transfer_s": rep.transfer_seconds, "bytes": rep.bytes_sent,
            "files_sent": len(rep.sent_files), "payload": rep.payload_bytes,
            "wire_payload": rep.wire_payload_bytes, "outcome": rep.outcome,
            "label": rep.build.label}  # fmt: skip


def measure(firmware: Path | None = None) -> dict:
    """Flash a blank virtual board three times (full, one module changed, unchanged)."""
    fw_src = firmware or firmware_dir()
    old_cfg = os.environ.get("RETROSTEP_CONFIG_DIR")
    with tempfile.TemporaryDirectory(prefix="retrostep-flash-bench-") as tmp:
        t = Path(tmp)
        os.environ["RETROSTEP_CONFIG_DIR"] = str(t / "config")  # keys stay in here
        try:
            fw1 = t / "fw1"
            shutil.copytree(fw_src, fw1, ignore=shutil.ignore_patterns("__pycache__"))
            fw2 = t / "fw2"
            shutil.copytree(fw1, fw2)
            with open(fw2 / CHANGED, "a") as f:
                f.write("\nBENCH_FLASH_MARK = 1\n")
            with VirtualBoard(t / "flash.img") as vb:
                full = _flash(vb.port, fw1)
                incremental = _flash(vb.port, fw2)
                unchanged = _flash(vb.port, fw2)
        finally:
            if old_cfg is None:
                os.environ.pop("RETROSTEP_CONFIG_DIR", None)
            else:
                os.environ["RETROSTEP_CONFIG_DIR"] = old_cfg
        sizes = {}
        for arch in ("xtensawin", "x64"):
            bld = build(fw1, arch)
            sizes[arch] = {"modules": len(bld.files), "compiled": bld.compiled_size,
                           "source": bld.source_size,
                           "deflated": sum(len(f.deflated()) for f in bld.files.values()),
                           "loader": sum(f.size for f in bld.loader.values())}  # fmt: skip
    return {"full": full, "incremental": incremental, "unchanged": unchanged, "sizes": sizes}


def flash_section(m: dict | None = None) -> list[str]:
    m = measure() if m is None else m

    def row(name: str, r: dict, note: str) -> str:
        at_baud = r["bytes"] * 10 / BAUD
        return (f"| {name} | {r['files_sent']} | {r['bytes'] / 1024:.1f} KB | "
                f"{r['wall_s']:.2f} s ({r['transfer_s']:.2f} s transfer) | {at_baud:.1f} s | "
                f"{note} |")  # fmt: skip

    esp, x64 = m["sizes"]["xtensawin"], m["sizes"]["x64"]
    inc = m["incremental"]
    return [
        "## Flashing",
        "",
        "`retrostep flash` against the virtual board (`retrostep sim board`: the unix port "
        "behind a pty, a LittleFS image as its flash), measured by "
        "`retrostep.flash.bench`: a blank board flashed, then the same firmware with one "
        f"module changed (`{CHANGED}`), then again unchanged. Bytes: everything written "
        "to the port (commands, base64, raw-REPL framing). Wall time: the whole command, "
        "including the restart and the health check of the new version. The last column "
        f"is those bytes at {BAUD} baud, what a USB-UART ESP32 board would at least take.",
        "",
        "| flash | files sent | bytes sent | wall time (virtual board) | bytes at 115200 "
        "baud | note |",
        "|---|---|---|---|---|---|",
        row("full, blank board", m["full"],
            f"{m['full']['payload'] / 1024:.1f} KB of modules, "
            f"{m['full']['wire_payload'] / 1024:.1f} KB deflated"),
        row("one module changed", inc,
            f"{inc['payload'] / 1024:.1f} KB sent; the other modules copied on the board"),
        row("unchanged", m["unchanged"], "probe and hashes only; no restart"),
        "",
        "| firmware size | ESP32 (xtensawin) | unix port (x64) |",
        "|---|---|---|",
        f"| modules | {esp['modules']} | {x64['modules']} |",
        f"| source (.py) | {esp['source'] / 1024:.1f} KB | {x64['source'] / 1024:.1f} KB |",
        f"| compiled (.mpy, on flash) | **{esp['compiled'] / 1024:.1f} KB** "
        f"({esp['compiled'] / esp['source']:.0%}) | {x64['compiled'] / 1024:.1f} KB "
        f"({x64['compiled'] / x64['source']:.0%}) |",
        f"| compiled, deflated (on the wire, before base64) | {esp['deflated'] / 1024:.1f} KB "
        f"| {x64['deflated'] / 1024:.1f} KB |",
        f"| loader (boot.py + main.py, source) | {esp['loader'] / 1024:.1f} KB | "
        f"{x64['loader'] / 1024:.1f} KB |",
        "",
        "A slot holds one compiled copy; with the previous version kept, the firmware "
        "takes about twice the compiled size on the board's flash (plus a 4 KB block "
        "per file at least: LittleFS).",
        "",
    ]


if __name__ == "__main__":
    print("\n".join(flash_section()))
