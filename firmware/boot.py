# Runs first at every reset, also when a host tool soft-resets into the raw REPL (where
# main.py does not run): puts the installed firmware's active slot first on sys.path,
# so the REPL and tools import what main.py runs (`import retrostep_device` gives the
# version). Read-only, and nothing here may stop the boot: the loader (main.py) owns
# the state and the health check (docs/flashing.md). No hardware is touched here (the
# board HAL sets it up when the app starts).


def _active_slot():
    import sys

    try:
        import json

        with open("/fw/state") as f:
            slot = json.loads(f.read())["active"]
        if slot in ("a", "b") and "/fw/" + slot not in sys.path:
            sys.path.insert(0, "/fw/" + slot)
    except Exception:  # not installed by `retrostep flash`, or unreadable: main.py decides
        pass


_active_slot()
del _active_slot
