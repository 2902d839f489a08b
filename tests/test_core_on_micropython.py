"""Run every portable core test (tests/core/test_core_*.py) inside the MicroPython unix
port, one interpreter per module, and report each test function separately."""

from __future__ import annotations

import ast
import subprocess
from functools import cache
from pathlib import Path

import pytest

from retrostep.runtime.micropython_port import micropython_executable

CORE_TESTS = Path(__file__).parent / "core"
FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"  # core and device packages


def _functions() -> list[tuple[str, str]]:
    out = []
    for path in sorted(CORE_TESTS.glob("test_core_*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                out.append((path.stem, node.name))
    return out


@cache
def _run_module(module: str) -> dict[str, str]:
    env = {"MICROPYPATH": f".frozen:{FIRMWARE}:{CORE_TESTS}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [micropython_executable(), "-X", "heapsize=32m", str(CORE_TESTS / "mp_runner.py"), module],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    results: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        mod, _, rest = rest.partition(" ")
        func, _, err = rest.partition(":")
        if status in ("PASS", "FAIL") and mod == module:
            results[func] = status + err
    if not results:
        results["<module>"] = f"FAIL no output (exit {proc.returncode}): {proc.stderr[-500:]}"
    return results


@pytest.mark.parametrize(("module", "func"), _functions(), ids=lambda v: v)
def test_under_micropython(module: str, func: str) -> None:
    results = _run_module(module)
    assert "<module>" not in results, results["<module>"]
    assert func in results, f"{func} did not run under MicroPython"
    assert results[func] == "PASS", results[func]
