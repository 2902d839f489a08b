"""Session logs from files: single logs (``N.rsl`` as stored on the device) or a whole
flash image (the sim board's LittleFS image), for ``retrostep db import``.

A log file starts with a frame's SYNC bytes; a LittleFS image has the ``littlefs`` magic
in its superblock. An image is read by the MicroPython unix port, which mounts it the
way the device does (the host never mounts it itself), with the sim board's dump script.
"""

from __future__ import annotations

from pathlib import Path

from retrostep_core import records as r

from .errors import UsageProblem

LFS_MAGIC = b"littlefs"
BLOCK = 4096


def _is_image(head: bytes) -> bool:
    # The superblock sits in block 0 or 1, with the magic 8 bytes into the block.
    return head[8:16] == LFS_MAGIC or head[BLOCK + 8 : BLOCK + 16] == LFS_MAGIC


def image_logs(image: Path) -> list[tuple[int, bytes]]:
    """``(session id, bytes)`` of every session file of a flash image, by id."""
    from . import sim

    return sim.read_session_files(image)


def read_logs(paths: list[str] | tuple[str, ...]) -> list[tuple[str, bytes]]:
    """``(source, raw log)`` for every session in the files given, in order."""
    out = []
    for name in paths:
        p = Path(name)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise UsageProblem(f"cannot read {name}: {e.strerror}") from e
        if data[:2] == r.SYNC:
            out.append((name, data))
        elif _is_image(data[: 2 * BLOCK]):
            for sid, raw in image_logs(p):
                if raw:  # an empty file is a session cut before its HEADER: nothing in it
                    out.append((f"{name}:{sid}", raw))
        else:
            raise UsageProblem(f"{name} is neither a session log nor a flash image")
    return out
