# MicroPython script (runs in the unix port, not in CPython): the virtual board's boot
# sequence (retrostep.virtual_board starts it as
# `micropython -i board_boot.py IMAGE HOSTDIR KIND [ARG...]` on a pty).
#
# What a real port does between reset and the REPL, on the unix port:
# * the LittleFS image (FileBlockDevice, the sim board's flash chip) becomes the root
#   filesystem: the port's own posix root is unmounted, the image mounted at "/" (a blank
#   image, all 0xFF or all 0x00, is formatted first; any other image that does not mount
#   is an error, never wiped); HOSTDIR (a host directory, e.g. the IMU samples) at
#   "/host"; cwd "/", sys.path as on a board ("", ".frozen", "/lib");
# * with the simulated radio (RETROSTEP_RADIO set, the `bluetooth` stand-in on
#   MICROPYPATH) `bluetooth` is imported before the host's filesystem goes away, so it
#   is there like the port's built-in module (it is never on the image);
# * sys.argv becomes ["main.py", ARG...] (main.py hands sys.argv[1:] to the sim board);
# * machine.reset() exists: a hard reset is the interpreter killed (SIGKILL, a power
#   cut; the virtual board reboots it), as uncatchable as the real one;
# * at exit (a soft reset), files user code left open are closed as far as possible;
# * /boot.py runs, then /main.py if KIND is "hard" or "soft" (not "raw", a soft reset
#   from the raw REPL: real ports skip main.py then, and mpremote relies on it; nor
#   "repl"); an exception is printed and the boot goes on, SystemExit is a soft reset;
#   then `-i` gives the friendly REPL, in the namespace main.py ran in.
#
# The host learns where the boot is from marker lines it removes from the console
# (terminal "application program command" strings, which terminals ignore):
# alive (the image is mounted, user code may be interrupted from now on), repl (the
# interpreter's REPL comes next), soft (soft reset requested), fail:<why> (no boot).
import sys

# The helpers below import what they use themselves: _boot() empties __main__ (the
# REPL's namespace) before it runs user code, module globals included.


def _mark(what):
    import sys

    sys.stdout.write("\x1b_retrostep-board:" + what + "\x1b\\")


def _blank(bd, size):
    # Never programmed (0xFF, an erased chip) or a file of zeros (truncate -s): the two
    # superblock copies at blocks 0 and 1 tell.
    buf = bytearray(size)
    first = None
    for b in (0, 1):
        bd.readblocks(b, buf)
        for x in buf:
            if first is None:
                first = x
            if x != first or x not in (0, 0xFF):
                return False
    return True


def _mount(image, host):
    import os

    import vfs

    # The sim board's block device, from the firmware tree (MICROPYPATH); the modules are
    # forgotten afterwards so the image's own copies are the ones the firmware imports.
    from retrostep_device.blockdev import DEFAULT_BLOCK_SIZE, FileBlockDevice

    for name in list(sys.modules):
        if name.startswith("retrostep_"):
            del sys.modules[name]
    bd = FileBlockDevice(image)
    try:
        fs = vfs.VfsLfs2(bd)
    except OSError:
        if not _blank(bd, DEFAULT_BLOCK_SIZE):
            bd.close()
            return "flash image " + image + " is not a LittleFS image (nor blank)"
        vfs.VfsLfs2.mkfs(bd)
        fs = vfs.VfsLfs2(bd)
    hostfs = vfs.VfsPosix(host) if host != "-" else None
    vfs.umount("/")
    vfs.mount(fs, "/")
    if hostfs is not None:
        vfs.mount(hostfs, "/host")
    os.chdir("/")
    return None


class _Machine:
    """The ``machine`` module with ``reset()``: the unix port's has no hard reset."""

    def __init__(self, machine, os):
        self._m = machine
        self._os = os

    def __getattr__(self, name):
        return getattr(self._m, name)

    def reset(self):
        # SIGKILL to the interpreter (the shell's parent): nothing runs after it, as on a
        # board whose reset line is pulled; the virtual board sees the kill and reboots.
        self._os.system("kill -KILL $PPID")


def _exec_file(name, g):
    """Run /name like a port's pyexec_file: missing is fine, errors are printed."""
    import sys

    try:
        try:
            f = open(name)
        except OSError:
            return
        with f:
            src = f.read()
        exec(compile(src, name, "exec"), g)
    except SystemExit:
        raise
    except BaseException as e:  # KeyboardInterrupt too: the board goes on to the REPL
        sys.print_exception(e)


def _sweep(g):
    # A real soft reset sweeps the whole heap, running every finaliser: files left open
    # are closed, their data written. The unix port exits without that; the nearest is
    # to drop __main__'s names and collect, which closes every file nothing else holds.
    def sweep():
        import gc

        g.clear()
        gc.collect()

    return sweep


def _boot():
    import sys

    mark, run = _mark, _exec_file
    g = globals()
    image, host, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    args = sys.argv[4:]
    try:
        import os

        import machine

        if os.getenv("RETROSTEP_RADIO"):
            import bluetooth  # noqa: F401  (kept in sys.modules: the "built-in" module)

        why = _mount(image, host)
        if why is None:
            sys.modules["machine"] = _Machine(machine, os)
    except Exception as e:  # the board cannot start: tell the host why
        why = "cannot mount the flash image " + image + ": " + repr(e)
    if why is not None:
        mark("fail:" + why)
        return
    sys.atexit(_sweep(g))
    sys.path[:] = ["", ".frozen", "/lib"]
    sys.argv[:] = ["main.py"] + args
    for k in list(g):  # user code and the REPL start with a clean __main__
        if k != "__name__":
            del g[k]
    try:
        mark("alive")
        run("boot.py", g)
        if kind in ("hard", "soft"):
            run("main.py", g)
    except SystemExit:
        mark("soft")
        return
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being reported
        pass
    mark("repl")


_boot()
