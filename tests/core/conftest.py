"""The core tests are plain functions with plain asserts, so the very same files also run
inside the MicroPython unix port (see tests/test_core_on_micropython.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.name.startswith("test_mp_"):
            item.add_marker(pytest.mark.skip(reason="MicroPython-only (gc.mem_alloc); runs there"))
