"""Run the gait engine with every integer operation of its per-sample code checked.

Usage: python int_range_probe.py OUT_DIR CASE [CASE ...]

Copies retrostep_core into OUT_DIR with each binary operation and augmented assignment
inside its functions (construction and configuration excepted) wrapped in a recorder of
the largest magnitude seen, replays synthetic walks with hard impacts added (4 g, 30
rad/s), and prints one "MAX <magnitude> <where>" line per operation, largest first.
Run as a separate process so the instrumented copy never replaces the real package.
"""

import ast
import builtins
import collections
import shutil
import sys
from pathlib import Path

import numpy as np

import retrostep_core

SETUP = {"__init__", "set_limit", "alpha_q16", "samples_for", "_deg_to_rad4", "reset", "isqrt"}
MAXV: dict[str, int] = collections.defaultdict(int)


def _chk(v, key):
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAXV[key]:
        MAXV[key] = abs(v)
    return v


class _Wrap(ast.NodeTransformer):
    def __init__(self, mod):
        self.mod = mod
        self.func = None

    def visit_FunctionDef(self, node):
        if node.name in SETUP:
            return node
        outer, self.func = self.func, node.name
        self.generic_visit(node)
        self.func = outer
        return node

    def _wrap(self, node, value):
        key = f"{self.mod}:{node.lineno} {ast.unparse(node)[:60]}"
        call = ast.Call(ast.Name("_CHK", ast.Load()), [value, ast.Constant(key)], [])
        return ast.copy_location(call, node)

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return self._wrap(node, node) if self.func else node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        if not self.func:
            return node
        load = ast.parse(ast.unparse(node.target), mode="eval").body
        value = ast.copy_location(ast.BinOp(load, node.op, node.value), node)
        ast.fix_missing_locations(value)
        return ast.copy_location(ast.Assign([node.target], self._wrap(node, value)), node)


def instrument(out_dir: Path) -> None:
    src = Path(retrostep_core.__file__).parent
    dst = out_dir / "retrostep_core"
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for f in src.glob("*.py"):
        tree = ast.fix_missing_locations(_Wrap(f.name).visit(ast.parse(f.read_text())))
        header = "import builtins\n_CHK = builtins._CHK\n"
        (dst / f.name).write_text(header + ast.unparse(tree))


def main() -> None:
    out = Path(sys.argv[1])
    instrument(out)
    builtins._CHK = _chk
    for name in [m for m in list(sys.modules) if m.startswith("retrostep_core")]:
        del sys.modules[name]
    sys.path.insert(0, str(out))
    from retrostep import synth
    from retrostep.pipeline_io import trace_to_int_samples
    from retrostep_core.pipeline import GaitPipeline

    assert GaitPipeline.__module__ == "retrostep_core.pipeline"
    assert str(out) in sys.modules["retrostep_core"].__file__
    for case in sys.argv[2:]:
        tr, _ = synth.make_case(case)
        x = trace_to_int_samples(tr).astype(np.int64)
        fs = tr.fs_hz
        n = max(1, int(0.04 * fs))
        pulse = np.sin(np.pi * (np.arange(n) + 0.5) / n)
        for t0 in (1.5, 20.0, 40.0):  # one during the start-up warm-up
            i = int(t0 * fs)
            x[i : i + n, 2] += (4 * 9807 * pulse).astype(np.int64)
            x[i : i + n, 0] += (2 * 9807 * pulse).astype(np.int64)
            x[i : i + n, 3] += (30000 * pulse).astype(np.int64)
            x[i : i + n, 5] += (30000 * pulse).astype(np.int64)
        p = GaitPipeline(fs)
        for s in x.tolist():
            p.push(*s)
            while p.events.count:
                p.events.pop()
    for key, v in sorted(MAXV.items(), key=lambda kv: -kv[1]):
        print("MAX", v, key)


if __name__ == "__main__":
    main()
