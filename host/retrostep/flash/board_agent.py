"""MicroPython code the flasher runs on the board (sent once per session as source, then
called by name from short raw-REPL commands). Not imported on the host.

Plain Python both runtimes accept; names start with ``_rs_`` because they live in the
board's REPL globals. Everything prints one line per result so the host parses text.
"""

import binascii
import hashlib
import os

_RS_DIR = 0x4000
# A file a cut session left open in these globals is closed now, before anything is
# written again: dropped instead, its finaliser would close it at some later time and
# LittleFS would then commit its stale contents over the path's newer ones.
_rs_stale = globals().get("_rs_f")
if _rs_stale is not None:
    try:
        _rs_stale.close()
    except OSError:
        pass
_rs_stale = None
_rs_f = None


def _rs_sha(path):
    h = hashlib.sha256()
    buf = bytearray(1024)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
    return binascii.hexlify(h.digest()).decode()


def _rs_walk(d, rel, out):
    for e in os.ilistdir(d):
        p = d + "/" + e[0]
        if e[1] & _RS_DIR:
            _rs_walk(p, rel + e[0] + "/", out)
        else:
            out.append(rel + e[0])


def _rs_list(tag, d):
    """``F tag path size sha256`` for every file under ``d`` (none if ``d`` is missing)."""
    out = []
    try:
        _rs_walk(d, "", out)
    except OSError:
        return
    for rel in out:
        p = d + "/" + rel
        print("F", tag, rel, os.stat(p)[6], _rs_sha(p))


def _rs_list_files(tag, paths):
    for p in paths:
        try:
            size = os.stat(p)[6]
        except OSError:
            continue
        print("F", tag, p[1:], size, _rs_sha(p))


def _rs_read(path):
    """The file's bytes as hex on one line, or ``-`` when it does not exist."""
    try:
        with open(path, "rb") as f:
            print("R", binascii.hexlify(f.read()).decode() or "=")
    except OSError:
        print("R -")


def _rs_mkdirs(path):
    """Make the directories of the file ``path``."""
    d = ""
    for part in path.split("/")[1:-1]:
        d += "/" + part
        try:
            os.mkdir(d)
        except OSError:  # already there
            pass


def _rs_rm(path):
    try:
        mode = os.stat(path)[0]
    except OSError:
        return
    if mode & _RS_DIR:
        for e in list(os.ilistdir(path)):
            _rs_rm(path + "/" + e[0])
        os.rmdir(path)
    else:
        os.remove(path)


def _rs_copy(src, dst):
    _rs_mkdirs(dst)
    buf = bytearray(1024)
    mv = memoryview(buf)
    with open(src, "rb") as f:
        with open(dst, "wb") as g:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                g.write(mv[:n])


def _rs_open(path):
    global _rs_f
    _rs_mkdirs(path)
    _rs_f = open(path, "wb")


def _rs_w(b64):
    _rs_f.write(binascii.a2b_base64(b64))


def _rs_close():
    global _rs_f
    _rs_f.close()
    _rs_f = None


def _rs_inflate(src, dst, wbits):
    """Decompress the raw-deflate file ``src`` into ``dst``, then remove ``src``."""
    import deflate

    buf = bytearray(1024)
    mv = memoryview(buf)
    with open(src, "rb") as f:
        z = deflate.DeflateIO(f, deflate.RAW, wbits)
        with open(dst, "wb") as g:
            while True:
                n = z.readinto(buf)
                if not n:
                    break
                g.write(mv[:n])
    os.remove(src)


def _rs_put(path, b64, sha):
    """Write a small file whole: to ``path.tmp``, check its SHA-256, rename (atomic)."""
    _rs_mkdirs(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(binascii.a2b_base64(b64))
    if _rs_sha(tmp) != sha:
        os.remove(tmp)
        raise ValueError("hash mismatch writing " + path)
    os.rename(tmp, path)
