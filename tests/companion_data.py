"""Session logs for the companion tests (store, commands, report), made once per run.

* :func:`sim_logs`: real firmware logs. A synthesized walk (forward, backward with an
  excessive lean, forward with another) replayed on the sim board, the unmodified
  firmware in the MicroPython unix port, with an interval program and a button press
  that splits it into two sessions; the raw session files are read off its flash image.
* :func:`history`: weeks of sessions encoded as the firmware writes them
  (``retrostep.demo_data``), with a closed-loop program.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from retrostep import demo_data, sim, synth
from retrostep.importing import image_logs
from retrostep.trace import write_trace
from retrostep_core import config as cfg

_DIR = Path(tempfile.mkdtemp(prefix="retrostep-companion-tests-"))


@lru_cache(maxsize=1)
def sim_image() -> Path:
    """The sim board's flash image after the walk (two sessions)."""
    segs = [
        synth._st(2),
        synth._w(30, sway=[synth._sw(14, 16, "left", 1.8)]),
        synth._b(30, sway=[synth._sw(12, 18, "right", 2.0)]),
        synth._w(20),
        synth._st(2),
    ]
    trace, _ = synth.synthesize(segs, synth.make_person(3), fs_hz=52, seed=11)
    path = _DIR / "walk.csv"
    write_trace(path, trace)
    c = cfg.defaults()
    c["program"] = [("forward", 30), ("backward", 30)]
    conf = _DIR / "config.bin"
    conf.write_bytes(cfg.encode(c))
    image = _DIR / "flash.img"
    sim.run(str(path), image=str(image), config=str(conf), buttons=(1000, 70000))
    return image


@lru_cache(maxsize=1)
def sim_logs() -> tuple[bytes, ...]:
    """The raw session files of :func:`sim_image`, by session id."""
    return tuple(raw for _, raw in image_logs(sim_image()))


def copy_image(to: Path) -> Path:
    shutil.copyfile(sim_image(), to)
    return to


@lru_cache(maxsize=4)
def history(weeks: int = 6, per_week: int = 4, seed: int = 5) -> tuple[demo_data.DemoSession, ...]:
    return tuple(demo_data.history(weeks=weeks, per_week=per_week, seed=seed))


def frame_ends(raw: bytes) -> list[int]:
    """Offsets just past each frame of a clean log (where a read may stop)."""
    ends, p = [], 0
    while p + 8 <= len(raw):
        p += raw[p + 3] + 8
        ends.append(p)
    return ends
