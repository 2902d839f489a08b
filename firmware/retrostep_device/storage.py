"""Session logs on flash: append-only record files, an atomic index, power-cut recovery
and retention (``docs/storage.md`` has the rules and the reasoning).

Layout under ``root`` (``/logs`` on the device)::

    <id>.rsl     one session: framed records (retrostep_core.records), HEADER first,
                 END last once the session is closed; only ever appended to
    index        next session id and the ids the host has synced (format below);
                 replaced atomically: written to index.tmp, then renamed over it

Writing: :meth:`SessionStore.append` copies a frame into a preallocated buffer; the
buffer goes to flash (write + flush, one LittleFS commit) when it holds
``flush_bytes`` (512) or when :meth:`SessionStore.tick` sees ``flush_ms`` (2 s) of
session time since the last flush. A power cut therefore loses at most about 2 s of
what reached the store (plus whatever the caller's encoder still batches).

Nothing here raises into the walking loop: every ``OSError`` of the filesystem (ENOSPC,
EIO, a missing directory) is caught and becomes state: ``full`` (no more data is
written this session), ``err`` (the errno) and ``dropped`` (bytes not written). The one
exception is a programming error: :meth:`SessionStore.begin` while a session is open
raises ValueError.

Index format v1, little-endian::

    0       4   magic b"RSIX"
    4       1   version (INDEX_VERSION)
    5       4   u32 next session id
    9       2   u16 n, number of synced ids
    11      4n  u32 synced session ids, ascending
    11+4n   4   u32 CRC-32 of every byte before it

An index that is missing or fails its checks is rebuilt from the files present: the next
id is one past the highest session file, and no session counts as synced (so none can
be evicted before the host syncs it again: a lost index never loses data).
"""

import os
import struct
import sys

from retrostep_core import records as r
from retrostep_core.compat import const

SUFFIX = ".rsl"
INDEX = "index"
INDEX_TMP = "index.tmp"
INDEX_MAGIC = b"RSIX"
INDEX_VERSION = const(1)
_INDEX_FIXED = const(11)

FLUSH_MS = const(2000)  # session time a buffered record may wait for flash
FLUSH_BYTES = const(512)  # buffer level that forces a flush
DEFAULT_HEADROOM = const(65536)  # free space wanted when a session starts: ~1 h of log
RESERVE_BLOCKS = const(4)  # default reserve, in filesystem blocks
_RECOVER_WINDOW = const(2048)  # recovery reads a torn session this much at a time
_ENOSPC = const(28)
_MPY = sys.implementation.name == "micropython"


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else -1


def _write(f, buf, n):
    """Write the first ``n`` bytes of ``buf`` (no slice on MicroPython)."""
    if n == len(buf):
        f.write(buf)
    elif _MPY:
        f.write(buf, n)  # type: ignore[call-arg]  # MicroPython streams: write(buf, len)
    else:
        f.write(memoryview(buf)[:n])


def _remove_quiet(path):
    try:
        os.remove(path)
    except OSError:
        pass


def parse_index(data):
    """``(next_id, [synced ids])`` from index bytes, or None if they are not a valid v1
    index (short, bad magic, bad CRC, other version, bad count)."""
    if data is None or len(data) < _INDEX_FIXED + 4:
        return None
    data = bytes(data)
    size = len(data)
    if data[:4] != INDEX_MAGIC or data[4] != INDEX_VERSION:
        return None
    if r.crc32(data[: size - 4]) != struct.unpack_from("<I", data, size - 4)[0]:
        return None
    next_id, n = struct.unpack_from("<IH", data, 5)
    if _INDEX_FIXED + 4 * n + 4 != size:
        return None
    synced = [struct.unpack_from("<I", data, _INDEX_FIXED + 4 * k)[0] for k in range(n)]
    return next_id, synced


def encode_index(next_id, synced):
    """Index bytes for ``next_id`` and the synced ids (any iterable)."""
    ids = sorted(synced)
    n = len(ids)
    size = _INDEX_FIXED + 4 * n + 4
    data = bytearray(size)
    data[:4] = INDEX_MAGIC
    data[4] = INDEX_VERSION
    struct.pack_into("<IH", data, 5, next_id, n)
    for k in range(n):
        struct.pack_into("<I", data, _INDEX_FIXED + 4 * k, ids[k])
    struct.pack_into("<I", data, size - 4, r.crc32(bytes(data[: size - 4])))
    return bytes(data)


def _interval_at(changes, t):
    """The interval kind at session time ``t`` from the INTERVAL records seen so far."""
    kind = r.KIND_NONE
    best = -1
    for ct, k in changes:
        if best < ct <= t:
            best = ct
            kind = k
    return kind


def session_totals(records, totals=None):
    """Add the totals of decoded records into ``totals`` (a dict, made if None).

    Keys: ``t`` (end of the last record's time, ms), ``forward`` / ``backward`` (steps:
    the largest of what STEPS / WINDOW, STEP and per-second records count, as batches
    are flushed separately and per-second counts saturate), ``alerts``, ``walking_s``
    and ``compliance_s`` (seconds walking in a backward interval with at least one
    backward step; a WINDOW second's interval is the last INTERVAL record at or before
    it: INTERVAL records are written when they happen, seconds some seconds later).
    """
    if totals is None:
        totals = {"t": 0, "forward": 0, "backward": 0, "alerts": 0, "walking_s": 0,
                  "compliance_s": 0, "_f": 0, "_b": 0, "_pf": 0, "_pb": 0, "_sf": 0,
                  "_sb": 0, "_iv": []}  # fmt: skip
    t = totals["t"]
    changes = totals["_iv"]  # (t, kind) of the INTERVAL records: a few per session
    for kind, f in records:
        if kind == r.INTERVAL:
            changes.append((f["t"], f["kind"]))
        if kind == r.STEPS or kind == r.WINDOW:
            for ts, d in f["steps"]:
                if d < 0:
                    totals["_b"] += 1
                else:
                    totals["_f"] += 1
                if ts > t:
                    t = ts
        elif kind == r.STEP:  # a detailed log has each step twice: STEP and STEPS
            if f["direction"] < 0:
                totals["_pb"] += 1
            else:
                totals["_pf"] += 1
            if f["t"] > t:
                t = f["t"]
        if kind == r.SECONDS or kind == r.WINDOW:
            for s in f["seconds"]:
                totals["_sf"] += s["forward"]
                totals["_sb"] += s["backward"]
                if s["walking"]:
                    totals["walking_s"] += 1
                    iv = s["interval"]
                    if iv is None:
                        iv = _interval_at(changes, s["t"])
                    if iv == r.KIND_BACKWARD and s["backward"]:
                        totals["compliance_s"] += 1
                if s["t"] + 1000 > t:
                    t = s["t"] + 1000
        else:
            if kind == r.SWAY_ALERT:
                totals["alerts"] += 1
            ts = f.get("t", 0)
            if kind != r.HEADER and ts > t:
                t = ts
    totals["t"] = t
    totals["forward"] = max(totals["_f"], totals["_pf"], totals["_sf"])
    totals["backward"] = max(totals["_b"], totals["_pb"], totals["_sb"])
    return totals


class SessionStore:
    """Session log files in the directory ``root`` of a mounted filesystem.

    ``reserve`` (bytes, default 4 filesystem blocks): free space the data path never
    eats into; it is kept for the NOTE, the END and the filesystem's own copy-on-write
    blocks. ``headroom`` (bytes): free space :meth:`begin` tries to have, by evicting
    synced sessions. ``quota`` (bytes or None): an upper limit on what the log files
    may occupy, on top of the filesystem's own size (firmware and config share the
    device's flash). Times are session milliseconds, as in the records.

    State for the app: ``active`` (id of the open session or None), ``full`` (this
    session writes no more data), ``err`` (errno of the last filesystem error or None),
    ``dropped`` (bytes of this session not written), ``committed`` (bytes of it on
    flash), ``flushes``, ``evicted`` (sessions deleted by retention), ``rebuilt`` (the
    index was missing or damaged at start and was rebuilt from the files).
    """

    def __init__(self, root="/logs", reserve=None, headroom=DEFAULT_HEADROOM, quota=None,
                 flush_ms=FLUSH_MS, flush_bytes=FLUSH_BYTES):  # fmt: skip
        if flush_bytes < 1 or flush_ms < 0:
            raise ValueError("flush_bytes must be >= 1 and flush_ms >= 0")
        root = root.rstrip("/")
        self.root = root
        self._prefix = root + "/"
        self.headroom = headroom
        self.quota = quota
        self.flush_ms = flush_ms
        self.flush_bytes = flush_bytes
        self.active = None
        self.evicted = 0
        self.rebuilt = False
        self._f = None
        self._buf = bytearray(flush_bytes + r.MAX_FRAME)
        self._new_session_state()
        self._enc = r.Encoder(2, 2)  # HEADER, NOTE, END only: smallest batch buffers
        self._next = 1
        self._synced = set()
        self._done = set()  # sessions known to end with END (they never change again)
        self._used = 0
        self._free_est = 0
        try:
            os.mkdir(root)
        except OSError:
            pass  # exists (or cannot be made: every later access reports it in ``err``)
        self.reserve = RESERVE_BLOCKS * self._block_size() if reserve is None else reserve
        self._load()

    # -- paths and files ----------------------------------------------------------------

    def _path(self, sid):
        return self._prefix + str(sid) + SUFFIX

    def _error(self, e):
        self.err = _errno(e)

    def _scan(self):
        """``[(id, size)]`` of the session files, oldest first. One directory walk: on
        LittleFS every lookup re-reads the directory's metadata log, so sizes come from
        ``os.ilistdir`` where the port has it rather than a ``stat`` per file."""
        out = []  # type: list[tuple[int, int]]
        try:
            if hasattr(os, "ilistdir"):
                entries = list(os.ilistdir(self.root))  # type: list[tuple]
            else:
                entries = [(name,) for name in os.listdir(self.root)]
        except OSError as e:
            self._error(e)
            return out
        for entry in entries:
            name = entry[0]
            if name.endswith(SUFFIX):
                stem = name[: -len(SUFFIX)]
                if stem and stem.isdigit():
                    sid = int(stem)
                    out.append((sid, entry[3] if len(entry) > 3 else self._size(sid)))
        out.sort()
        return out

    def _ids(self):
        """Session ids present, ascending (oldest first)."""
        return [sid for sid, _ in self._scan()]

    def _size(self, sid):
        try:
            return os.stat(self._path(sid))[6]
        except OSError:
            return -1

    def _read(self, path, offset, n):
        try:
            with open(path, "rb") as f:
                if offset:
                    f.seek(offset)
                return f.read(n)
        except OSError:
            return None

    def _block_size(self):
        try:
            st = os.statvfs(self.root)
            return st[1] or st[0] or 4096
        except OSError:
            return 4096

    # -- index --------------------------------------------------------------------------

    def _load(self):
        found = self._scan()
        ids = [sid for sid, _ in found]
        used = 0
        for _, size in found:
            if size > 0:
                used += size
        self._used = used
        parsed = parse_index(self._read(self._prefix + INDEX, 0, 4096))
        if parsed is None:  # an interrupted FAT-style replace leaves only the temp file
            parsed = parse_index(self._read(self._prefix + INDEX_TMP, 0, 4096))
        if parsed is None:
            self.rebuilt = True
            next_id, synced = 1, []
        else:
            next_id, synced = parsed
        if ids and ids[-1] >= next_id:
            next_id = ids[-1] + 1
        self._next = next_id
        self._synced = set(s for s in synced if s in ids)
        if self.rebuilt:
            self._save_index()

    def _save_index(self):
        """Replace the index atomically; False (and ``err``) if the filesystem refused."""
        data = encode_index(self._next, self._synced)
        tmp = self._prefix + INDEX_TMP
        dst = self._prefix + INDEX
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            try:
                os.rename(tmp, dst)  # LittleFS and POSIX replace atomically
            except OSError:  # a filesystem whose rename does not replace (FAT)
                _remove_quiet(dst)
                os.rename(tmp, dst)
            return True
        except OSError as e:
            self._error(e)
            return False

    # -- space and retention ------------------------------------------------------------

    def free_bytes(self):
        """Free bytes for logs now: the filesystem's free blocks (``os.statvfs``), capped
        by ``quota``. 0 if the filesystem cannot say."""
        try:
            st = os.statvfs(self.root)
        except OSError as e:
            self._error(e)
            self._free_est = 0
            return 0
        bsize = st[1] or st[0]
        avail = st[4]
        if avail > st[2]:  # LittleFS, when full, reports a wrapped-around (negative) count
            avail = 0
        free = avail * bsize
        if self.quota is not None:
            q = self.quota - self._used
            if q < free:
                free = q if q > 0 else 0
        self._free_est = free
        return free

    def _evict_one(self):
        """Delete the oldest synced session (never the open one, never an unsynced one)."""
        for sid, size in self._scan():
            if sid in self._synced and sid != self.active:
                try:
                    os.remove(self._path(sid))
                except OSError as e:
                    self._error(e)
                    return False
                self._synced.discard(sid)
                self._done.discard(sid)
                if size > 0:
                    self._used -= size
                self.evicted += 1
                self._save_index()
                return True
        return False

    def _room(self, n):
        """Whether ``n`` more bytes fit above the reserve, evicting synced sessions if
        needed. statvfs is asked only near the limit (on LittleFS it walks the tree)."""
        need = n + self.reserve
        if self._free_est >= need + self.reserve:
            return True
        free = self.free_bytes()
        while free < need and self._evict_one():
            free = self.free_bytes()
        return free >= need

    # -- writing ------------------------------------------------------------------------

    def _new_session_state(self):
        """Counters and flags that describe one session (fresh at start and per begin)."""
        self.full = False
        self.err = None
        self.dropped = 0
        self.committed = 0
        self.flushes = 0
        self._n = 0
        self._now = 0
        self._t_flush = 0
        self._created = False

    def begin(self, header=None):
        """Start a session and write its HEADER; returns the new session id.

        ``header``: dict of ``Encoder.header`` fields (``wall_start``, ``fs_mhz``,
        ``sway_limit_cdeg``, ``mounting``, ``config_version``, ``config_crc``,
        ``firmware``; missing ones are 0 / ""). Synced sessions are evicted (oldest
        first) until ``reserve + headroom`` is free or none is left. On a filesystem
        full of unsynced sessions the session still starts (the app keeps counting) with
        ``full`` set, and HEADER + NOTE storage-full + END go into the reserve if even
        that is possible.
        """
        if self.active is not None:
            raise ValueError("session %d is still open" % self.active)
        h = header or {}
        sid = self._next
        frame = self._enc.header(  # first: a bad firmware string raises before any change
            sid, h.get("wall_start", 0), h.get("fs_mhz", 0), h.get("sway_limit_cdeg", 0),
            h.get("mounting", 0), h.get("config_version", 0), h.get("config_crc", 0),
            h.get("firmware", ""),
        )  # fmt: skip
        self._next = sid + 1
        self.active = sid
        self._new_session_state()
        free = self.free_bytes()
        while free < self.reserve + self.headroom and self._evict_one():
            free = self.free_bytes()
        self._save_index()  # the id is taken even if the session file cannot be made
        if free < self.reserve // 2:  # not even room for HEADER, NOTE and END
            self.full = True
            self.dropped += len(frame)
            return sid
        try:
            self._f = open(self._path(sid), "wb")
            self._created = True
        except OSError as e:
            self._error(e)
            self.full = True
            self.dropped += len(frame)
            return sid
        if self._write_now(frame, len(frame)) and free < self.reserve:
            self._go_full()
        return sid

    def append(self, frame):
        """Queue one frame (bytes or a memoryview, copied at once) for the open session.

        True if it will be written, False if it was dropped (no open session, or
        ``full``). Flushes when the buffer reaches ``flush_bytes``. Never raises OSError.
        """
        n = len(frame)
        if self._f is None or self.full:
            if self.active is not None:
                self.dropped += n
            return False
        if self._n + n > len(self._buf):
            self._flush()
            if self.full:
                self.dropped += n
                return False
            if n > len(self._buf):  # bigger than a frame: straight through
                if self._room(n):
                    return self._write_now(frame, n)
                self._go_full()
                self.dropped += n
                return False
        a = self._n
        self._buf[a : a + n] = frame
        self._n = a + n
        if self._n >= self.flush_bytes:
            self._flush()
        return not self.full

    def tick(self, t_ms):
        """Tell the store the session time (ms); flushes when ``flush_ms`` has passed
        since the last flush and something is buffered. Cheap: call it every sample."""
        self._now = t_ms
        if self._n and t_ms - self._t_flush >= self.flush_ms:
            self._flush()

    def pending(self):
        """Bytes buffered, not yet on flash (what a power cut now would lose)."""
        return self._n

    def flush(self):
        """Write what is buffered now."""
        self._flush()

    def _flush(self):
        n = self._n
        if n == 0 or self._f is None:
            return
        if not self._room(n):
            self._go_full()
            return
        if self._write_now(self._buf, n):
            self._n = 0
            self._t_flush = self._now

    def _write_now(self, buf, n):
        """Write and commit ``n`` bytes of ``buf`` to the open session file."""
        f = self._f
        if f is None:
            return False
        try:
            _write(f, buf, n)
            f.flush()  # LittleFS: one commit; the data survives a power cut from here on
        except OSError as e:
            self._fail(e)
            return False
        self.committed += n
        self.flushes += 1
        self._used += n
        self._free_est -= n
        return True

    def _go_full(self):
        """Stop writing data this session; leave a NOTE if the reserve allows."""
        self.full = True
        self.dropped += self._n
        self._n = 0
        free = self._free_est
        if self._f is not None and free >= self.reserve // 2:
            note = self._enc.note(self._now, r.NOTE_STORAGE_FULL, free)
            self._write_now(note, len(note))

    def _fail(self, e):
        """A write failed (ENOSPC, EIO, ...): drop the buffer, stop writing data, reopen
        the file (a failed LittleFS file handle commits nothing more) and try a NOTE."""
        self._error(e)
        first = not self.full
        self.full = True
        self.dropped += self._n
        self._n = 0
        self._close_quiet()
        if first and self._reopen():
            note = self._enc.note(self._now, r.NOTE_STORAGE_FULL, 0)
            try:
                _write(self._f, note, len(note))
                self._f.flush()  # type: ignore[union-attr]
                self.committed += len(note)
            except OSError:
                self._close_quiet()

    def _reopen(self):
        if self._f is None and self._created and self.active is not None:
            try:
                self._f = open(self._path(self.active), "ab")
            except OSError as e:
                self._error(e)
        return self._f is not None

    def _close_quiet(self):
        f = self._f
        self._f = None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def end(self, fields=None):
        """Close the session with an END record; True if the END reached flash.

        ``fields``: dict of ``Encoder.end`` fields (``t``, ``forward``, ``backward``,
        ``alerts``, ``walking_s``, ``compliance_s``, ``reason``; missing ones are 0,
        ``t`` defaults to the last tick, ``reason`` to END_UNKNOWN). The END is written
        even when the session is ``full`` (it goes into the reserve): the totals the
        app kept while it could not log are not lost.
        """
        if self.active is None:
            return False
        f = fields or {}
        if not self.full:
            self._flush()
        frame = self._enc.end(
            f.get("t", self._now), f.get("forward", 0), f.get("backward", 0),
            f.get("alerts", 0), f.get("walking_s", 0), f.get("compliance_s", 0),
            f.get("reason", r.END_UNKNOWN),
        )  # fmt: skip
        ok = False
        self._reopen()
        if self._f is not None:
            before = self.full
            self.full = True  # a failing END must not try to write a NOTE after it
            ok = self._write_now(frame, len(frame))
            self.full = before
            if ok:
                self._done.add(self.active)
        self._close_quiet()
        self.active = None
        return ok

    # -- boot, sync ---------------------------------------------------------------------

    def recover(self):
        """Close every session cut by a power loss; returns their ids.

        A session file whose last record is not END gets an END with reason
        END_RECOVERED and the totals of the records it holds. A torn tail (a frame cut
        short, possible on filesystems without atomic commits) is left in place: the
        reader skips it. An empty file (cut before its HEADER was committed) is removed.
        """
        out = []
        for sid, size in self._scan():
            if sid == self.active or self._complete(sid, size):
                continue
            if self._recover_one(sid, size):
                out.append(sid)
        return out

    def _complete(self, sid, size):
        if sid in self._done:
            return True
        if size < r.OVERHEAD:
            return False
        n = r.MAX_FRAME if size > r.MAX_FRAME else size
        tail = self._read(self._path(sid), size - n, n)
        if tail is not None and r.decode_report(tail)["ended_cleanly"]:
            self._done.add(sid)
            return True
        return False

    def _recover_one(self, sid, size):
        path = self._path(sid)
        if size <= 0:
            if size == 0:
                _remove_quiet(path)
            return False
        totals = None
        pos = 0
        try:
            with open(path, "rb") as f:
                while pos < size:
                    f.seek(pos)
                    data = f.read(_RECOVER_WINDOW)
                    if not data:
                        break
                    rep = r.decode_report(data)
                    totals = session_totals(rep["records"], totals)
                    if pos + len(data) >= size:
                        break  # the last window: what follows its last frame is torn
                    used = len(data) - rep["torn_bytes"]
                    # nothing whole in a full window: every frame starting in its first
                    # len - MAX_FRAME + 1 bytes would have ended inside it
                    pos += used if used > 0 else len(data) - r.MAX_FRAME + 1
        except OSError as e:
            self._error(e)
            return False
        if totals is None:
            totals = session_totals(())
        frame = self._enc.end(
            totals["t"], totals["forward"], totals["backward"], totals["alerts"],
            totals["walking_s"], totals["compliance_s"], r.END_RECOVERED,
        )  # fmt: skip
        try:
            with open(path, "ab") as f:
                f.write(frame)
                f.flush()
        except OSError as e:
            self._error(e)
            return False
        self._used += len(frame)
        self._done.add(sid)
        return True

    def mark_synced(self, sid):
        """The host has this session: it may now be evicted. False if there is no such
        closed session (the open one cannot be marked)."""
        if sid == self.active or self._size(sid) < 0:
            return False
        if sid not in self._synced:
            self._synced.add(sid)
            self._save_index()
        if self.full and self.active is not None and self._f is not None and self.err is None:
            self.full = not self._room(0)  # room again: the open session resumes logging
        return True

    def list_sessions(self):
        """``[(id, size, synced, complete)]`` oldest first; the open session is listed
        as not complete."""
        out = []
        for sid, size in self._scan():
            complete = sid != self.active and self._complete(sid, size)
            out.append((sid, size, sid in self._synced, complete))
        return out

    def read_session(self, sid, offset, n):
        """Up to ``n`` bytes of session ``sid`` from ``offset`` (b"" past its end; of the
        open session, only what is on flash), or None if there is no such session."""
        return self._read(self._path(sid), offset, n)
