"""Tiny shims so the same source runs on MicroPython and CPython.

On CPython a stand-in ``micropython`` module (``const`` and the ``native`` decorator
as no-ops) is registered, so core modules can write ``@micropython.native`` exactly as
the MicroPython compiler expects.
"""

try:
    import micropython
except ImportError:  # CPython
    import sys
    import types

    micropython = types.ModuleType("micropython")
    micropython.const = lambda x: x  # type: ignore[attr-defined]
    micropython.native = lambda f: f  # type: ignore[attr-defined]
    sys.modules["micropython"] = micropython

const = micropython.const


def isqrt(n):
    """Integer square root (floor) of a non-negative int, without floats."""
    if n <= 0:
        return 0
    x = n
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


def alpha_q16(tau_ms, fs_mhz, n):
    """One-pole smoothing factor in Q16 for time constant ``tau_ms`` (milliseconds).

    The filter runs at ``fs_mhz / 1000 / n`` Hz. Uses the backward-Euler form
    ``alpha = dt / (tau + dt)``, computed in integers so every runtime gets the same
    coefficient bit for bit.
    """
    num = 65536 * 1000000 * n
    den = 1000000 * n + tau_ms * fs_mhz
    return (num + den // 2) // den


def samples_for(ms, fs_mhz, n=1):
    """How many filter steps (at ``fs_mhz / n``) last ``ms`` milliseconds, rounded."""
    den = 1000000 * n
    return (ms * fs_mhz + den // 2) // den
