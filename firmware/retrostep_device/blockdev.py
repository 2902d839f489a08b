"""A flash chip in a regular file: the sim board's block device.

Implements MicroPython's extended block-device protocol, so ``vfs.VfsLfs2`` runs on it
exactly as it runs on the ESP32's flash partition (the real board passes its
``esp32.Partition`` instead; nothing else changes)::

    bdev = FileBlockDevice("flash.img", block_size=4096, block_count=256)  # 1 MB
    vfs.VfsLfs2.mkfs(bdev)                      # once, like flashing a blank chip
    vfs.mount(vfs.VfsLfs2(bdev), "/flash")

Power cuts: every ``writeblocks`` / erase is one unbuffered ``write`` call on the file
(opened with ``buffering=0``), so when the process is killed the image holds exactly
the writes that were made, in order, and nothing else: what a flash chip holds when
its power goes. ``ioctl`` sync (op 3, LittleFS calls it at each commit) also flushes
the file to the host's disk (fsync on the unix port), which only matters if the host
itself crashes.

Erased blocks read as 0xFF, like NOR flash. Programming does not emulate NOR's
"bits only go 1 -> 0" rule: LittleFS always erases before it programs, so the
difference is never observable by it.
"""

import os

from retrostep_core.compat import const

# ioctl operations of MicroPython's block-device protocol.
IOCTL_INIT = const(1)
IOCTL_DEINIT = const(2)
IOCTL_SYNC = const(3)
IOCTL_BLOCK_COUNT = const(4)
IOCTL_BLOCK_SIZE = const(5)
IOCTL_BLOCK_ERASE = const(6)

DEFAULT_BLOCK_SIZE = const(4096)  # the ESP32's flash sector
DEFAULT_BLOCK_COUNT = const(256)  # 1 MB: room for ~20 hours of session logs
_EIO = const(5)
_ENOENT = const(2)


def _file_size(path):
    try:
        return os.stat(path)[6]
    except OSError as e:
        if e.args and e.args[0] == _ENOENT:
            return -1
        raise


class FileBlockDevice:
    """``block_count`` blocks of ``block_size`` bytes stored in the file ``path``.

    A missing file is created (all blocks erased, 0xFF); a shorter one is extended with
    erased blocks; ``block_count=None`` takes the size of an existing image. The file
    stays open until :meth:`close`.
    """

    def __init__(self, path, block_size=DEFAULT_BLOCK_SIZE, block_count=DEFAULT_BLOCK_COUNT):
        if block_size < 128 or block_size & (block_size - 1):
            raise ValueError("block_size must be a power of two >= 128")
        size = _file_size(path)
        if block_count is None:
            if size <= 0 or size % block_size:
                raise ValueError("block_count=None needs an existing image of whole blocks")
            block_count = size // block_size
        if block_count < 2:
            raise ValueError("block_count must be at least 2")
        self.path = path
        self.block_size = block_size
        self.block_count = block_count
        self._erased = b"\xff" * block_size
        if size < 0:
            open(path, "wb").close()
            size = 0
        self._f = open(path, "r+b", buffering=0)
        full = block_size * block_count
        if size < full:
            # extend with erased blocks (and a partial block's rest)
            self._f.seek(size)
            rest = full - size
            while rest > 0:
                n = block_size if rest > block_size else rest
                self._write_all(self._erased if n == block_size else self._erased[:n])
                rest -= n

    def _write_all(self, buf):
        n = len(buf)
        done = self._f.write(buf)  # one call, in practice all of it
        while done < n:  # a short write continues where it stopped
            w = self._f.write(memoryview(buf)[done:])
            if not w:
                raise OSError(_EIO)
            done += w

    def _seek(self, block_num, offset, n):
        if block_num < 0 or offset < 0:
            raise OSError(_EIO)
        at = block_num * self.block_size + offset
        if at + n > self.block_size * self.block_count:
            raise OSError(_EIO)
        self._f.seek(at)

    def readblocks(self, block_num, buf, offset=0):
        """Fill ``buf`` from block ``block_num``, byte ``offset`` on (may span blocks)."""
        n = len(buf)
        self._seek(block_num, offset, n)
        got = self._f.readinto(buf)  # one call, in practice all of it
        while got < n:
            k = self._f.readinto(memoryview(buf)[got:])
            if not k:
                raise OSError(_EIO)
            got += k

    def writeblocks(self, block_num, buf, offset=None):
        """Program ``buf`` at block ``block_num``, byte ``offset`` on.

        ``offset=None`` is the simple protocol (whole blocks, erased as they are written);
        with an offset the blocks must have been erased with ioctl 6 first (LittleFS
        does so), as on the chip.
        """
        self._seek(block_num, offset or 0, len(buf))
        self._write_all(buf)

    def ioctl(self, op, arg):
        if op == IOCTL_BLOCK_COUNT:
            return self.block_count
        if op == IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == IOCTL_BLOCK_ERASE:
            self._seek(arg, 0, self.block_size)
            self._write_all(self._erased)
            return 0
        if op == IOCTL_SYNC or op == IOCTL_DEINIT:
            self._f.flush()
            return 0
        if op == IOCTL_INIT:
            return 0
        return None  # an operation this device does not implement

    def close(self):
        """Close the image file (unmount the filesystem first)."""
        if self._f is not None:
            self._f.close()
            self._f = None  # type: ignore[assignment]
