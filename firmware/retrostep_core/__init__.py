"""retrostep core: pure gait logic shared by the firmware and the host tool.

Runs unchanged on MicroPython and CPython: no ``machine``, no ``bluetooth``, no floats
in the per-sample path (MicroPython boxes every float on the heap, so the streaming
code uses integer fixed point and allocates nothing per sample).
"""

from . import compat  # noqa: F401  (registers the ``micropython`` stand-in on CPython)

VERSION = "0.1.0"
