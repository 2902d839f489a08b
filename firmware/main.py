"""The loader: runs the installed firmware version, rolls back one that fails to start.

`retrostep flash` installs the app, compiled, into one of two slots (/fw/a, /fw/b) and
names the active one in /fw/state (docs/flashing.md). This file and boot.py are the
only files outside the slots: small, version-agnostic, replaced only atomically.

No /fw/state (the source tree under `retrostep sim run`): the app comes from sys.path.
Otherwise the active slot goes first on sys.path; a version on trial has its starts
counted (rolled back after MAX_BOOTS starts that never got healthy: a crash loop) and,
if it raises before the app calls back healthy (its first IMU batch), is rolled back at
once and the previous version started in the same boot. Lines on the console:
``retrostep: running <version> (slot <s>)``, ``retrostep: rolled back to <version>:
<error>``. The state is JSON, replaced whole: state.tmp, then a rename (atomic on
LittleFS).
"""

import sys

STATE_VERSION = 1
MAX_BOOTS = 3  # starts on trial without getting healthy, then roll back
SLOTS = ("a", "b")


def state_path(root):
    return root + "/fw/state"


def slot_dir(root, slot):
    return root + "/fw/" + slot


def slot_complete(root, slot):
    """A slot is complete once its manifest is there (the flasher writes it last)."""
    import os

    try:
        os.stat(slot_dir(root, slot) + "/manifest.json")
        return True
    except OSError:
        return False


def read_state(root=""):
    """The state (a dict), or None when no slot is installed."""
    import json

    try:
        with open(state_path(root)) as f:
            text = f.read()
    except OSError:  # no state file: not installed by `retrostep flash`
        return None
    try:
        st = json.loads(text)
    except ValueError:
        st = None
    if isinstance(st, dict) and st.get("active") in SLOTS:
        return st
    # Never written that way (rename is atomic); still, run a complete slot rather than
    # nothing.
    for slot in SLOTS:
        if slot_complete(root, slot):
            print("retrostep: state unreadable, running slot", slot)
            return {"v": STATE_VERSION, "active": slot, "prev": None, "trial": False,
                    "boots": 0, "version": "slot " + slot, "prev_version": None,
                    "rollback": None}  # fmt: skip
    return None


def write_state(root, st):
    import json
    import os

    tmp = state_path(root) + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(st))
    os.rename(tmp, state_path(root))


def use_slot(root, slot):
    """Import from ``slot`` from now on: first on sys.path, no module loaded before."""
    prefix = root + "/fw/"
    path = sys.path
    i = len(path)
    while i:
        i -= 1
        if path[i].startswith(prefix):
            path.pop(i)
    if slot is not None:
        path.insert(0, prefix + slot)
    for name in list(sys.modules):
        if name.startswith("retrostep_"):
            del sys.modules[name]


def describe(e):
    """One line: ``ImportError: no module named 'x'``."""
    msg = str(e).replace("\n", " ")
    return type(e).__name__ + (": " + msg if msg else "")


def rollback(root, st, error):
    """Back to the previous slot (the new state), or None when there is none."""
    failed = st.get("version")
    prev = st.get("prev")
    if prev in SLOTS and prev != st["active"] and slot_complete(root, prev):
        to = st.get("prev_version")
        new = {"v": STATE_VERSION, "active": prev, "prev": None, "trial": False, "boots": 0,
               "version": to, "prev_version": None,
               "rollback": {"from": failed, "to": to, "error": error}}  # fmt: skip
        write_state(root, new)
        print("retrostep: rolled back to %s: %s" % (to, error))
        return new
    st["trial"] = False
    st["boots"] = 0
    st["rollback"] = {"from": failed, "to": None, "error": error}
    write_state(root, st)
    print("retrostep: %s failed to start, no previous version: %s" % (failed, error))
    return None


class Health:
    """The app's ``started`` callback: ends the trial, once."""

    def __init__(self, root, st):
        self.root = root
        self.st = st
        self.ok = False

    def started(self):
        if self.ok:
            return
        self.ok = True
        st = self.st
        if st.get("trial"):
            st["trial"] = False
            st["boots"] = 0
            try:
                write_state(self.root, st)
            except OSError as e:  # keep running; the next boot counts as a trial start
                print("retrostep: cannot end the trial:", describe(e))
        print("retrostep: running %s (slot %s)" % (st.get("version"), st["active"]))


def main(root=""):
    st = read_state(root)
    if st is None:
        from retrostep_device import entry

        entry.main()
        return
    if st.get("trial"):
        st["boots"] = st.get("boots", 0) + 1
        if st["boots"] > MAX_BOOTS:
            st = rollback(root, st, "not healthy after %d starts" % MAX_BOOTS)
            if st is None:
                return
        else:
            write_state(root, st)
    while True:
        slot = st["active"]
        trial = st.get("trial")
        use_slot(root, slot)
        print("retrostep: starting %s (slot %s%s)" % (st.get("version"), slot,
                                                      ", trial" if trial else ""))  # fmt: skip
        health = Health(root, st)
        try:
            from retrostep_device import entry

            entry.main(health.started)
            return
        except Exception as e:  # a version on trial that fails to start goes back
            if health.ok or not trial:
                raise
            sys.print_exception(e)  # type: ignore[attr-defined]
            st = rollback(root, st, describe(e))
            if st is None:
                return


if __name__ == "__main__":
    main()
