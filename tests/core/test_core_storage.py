"""Session storage on a real filesystem.

Portable: under CPython the store runs in a temporary directory (a ``quota`` stands in
for the image's size); inside the MicroPython unix port it runs on a small LittleFS
image (``vfs.VfsLfs2`` on ``FileBlockDevice``), the sim board's flash, where a full
filesystem, statvfs and ENOSPC are LittleFS's own.
"""

import gc
import os
import sys
from binascii import hexlify

from retrostep_core import records as r
from retrostep_device.blockdev import FileBlockDevice
from retrostep_device.storage import (
    INDEX,
    INDEX_TMP,
    SessionStore,
    encode_index,
    parse_index,
)

MPY = sys.implementation.name == "micropython"
BLOCK = 4096
HEADER = {"wall_start": 812345678, "fs_mhz": 52000, "sway_limit_cdeg": 1000, "mounting": 0,
          "config_version": 1, "config_crc": 0x2DFEF328, "firmware": "0.1.0"}  # fmt: skip
_seq = [0]


def _tmp_name(stem):
    _seq[0] += 1
    return "/tmp/rs-%s-%d-%s" % (stem, _seq[0], hexlify(os.urandom(4)).decode())


class _Flash:
    """One test's filesystem: a fresh LittleFS image of ``blocks`` 4 KB blocks mounted at
    a mount point of its own (MicroPython), or a temporary directory whose log quota is
    about what such an image holds (CPython)."""

    def __init__(self, blocks=24):
        self.blocks = blocks
        if MPY:
            import vfs

            self.img = _tmp_name("flash") + ".img"
            self.bdev = FileBlockDevice(self.img, BLOCK, blocks)
            vfs.VfsLfs2.mkfs(self.bdev)
            self.mount = "/rsflash%d" % _seq[0]
            vfs.mount(vfs.VfsLfs2(self.bdev), self.mount)
            self.quota = None
        else:
            import tempfile

            self.mount = tempfile.mkdtemp(prefix="rs-flash-")
            self.quota = (blocks - 6) * BLOCK  # superblocks, directories, CoW spare
        self.root = self.mount + "/logs"

    def store(self, **kw):
        if "quota" not in kw:
            kw["quota"] = self.quota
        return SessionStore(self.root, **kw)

    def reboot(self):
        """Unmount and mount the image again (a fresh boot reads what is on flash)."""
        if MPY:
            import vfs

            vfs.umount(self.mount)
            self.bdev.close()
            self.bdev = FileBlockDevice(self.img, BLOCK, None)
            vfs.mount(vfs.VfsLfs2(self.bdev), self.mount)

    def path(self, name):
        return self.root + "/" + name

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)

    def close(self):
        if MPY:
            import vfs

            vfs.umount(self.mount)
            self.bdev.close()
            os.remove(self.img)
        else:
            import shutil

            shutil.rmtree(self.mount)


def _put(store, frame, frames):
    if frame is not None:
        if frames is not None:
            frames.append(bytes(frame))
        store.append(frame)


def _walk(store, enc, seconds, frames=None, totals=None, detail=True):
    """Walk for ``seconds`` the way the app logs: a step every 600 ms (every third one
    backward), a SECONDS summary per second (steps flushed with each SECONDS frame), a
    sway alert every 20 s, minutes alternating forward / backward intervals, a tick
    every 100 ms. ``detail`` adds a STEP record per step. Keeps the app's totals in
    ``totals`` whatever the store does with the frames (it keeps counting when full)."""
    tot = totals or {"t": 0, "forward": 0, "backward": 0, "alerts": 0, "walking_s": 0,
                     "compliance_s": 0}  # fmt: skip
    t0 = tot["t"]
    fwd = bwd = 0
    for k in range(seconds * 10):
        t = t0 + 100 * k
        if k % 6 == 0:
            d = -1 if (k // 6) % 3 == 2 else 1
            if d < 0:
                bwd += 1
                tot["backward"] += 1
            else:
                fwd += 1
                tot["forward"] += 1
            if detail:
                _put(store, enc.step(t, d, 900), frames)
            _put(store, enc.add_step(t, d), frames)
        if k % 200 == 199:
            tot["alerts"] += 1
            _put(store, enc.sway_alert(t, 1, 123), frames)
        if k % 10 == 9:
            s0 = t - 900
            kind = r.KIND_BACKWARD if (s0 // 60000) % 2 else r.KIND_FORWARD
            tot["walking_s"] += 1
            if kind == r.KIND_BACKWARD and bwd:
                tot["compliance_s"] += 1
            out = enc.add_second(s0, fwd, bwd, 1000, 45, 120, True, kind)
            if out is not None:
                _put(store, out, frames)
                _put(store, enc.flush_steps(), frames)
            fwd = bwd = 0
        store.tick(t)
    _put(store, enc.flush_seconds(), frames)
    _put(store, enc.flush_steps(), frames)
    tot["t"] = t0 + 100 * seconds * 10
    return tot


def _session(store, seconds, detail=True, reason=r.END_BUTTON):
    sid = store.begin(HEADER)
    tot = _walk(store, r.Encoder(), seconds, detail=detail)
    tot["reason"] = reason
    store.end(tot)
    return sid, tot


def _ids(store):
    return [s[0] for s in store.list_sessions()]


def _read_all(store, sid, chunk=200):
    """A session's bytes read the way BLE sync reads them: chunk by chunk."""
    out = b""
    while True:
        part = store.read_session(sid, len(out), chunk)
        if not part:
            return out
        out += part


def _end_of(rep):
    ends = [f for k, f in rep["records"] if k == r.END]
    assert len(ends) == 1, ends
    return ends[0]


def _same_totals(end, tot):
    for key in ("t", "forward", "backward", "alerts", "walking_s", "compliance_s"):
        assert end[key] == tot[key], (key, end[key], tot[key])


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    raise AssertionError("%s not raised" % exc.__name__)


# -- block device and index codec ------------------------------------------------------


def test_file_block_device_protocol():
    path = _tmp_name("bdev") + ".img"
    try:
        bd = FileBlockDevice(path, 512, 8)
        assert os.stat(path)[6] == 4096
        assert bd.ioctl(4, 0) == 8 and bd.ioctl(5, 0) == 512
        assert bd.ioctl(1, 0) == 0 and bd.ioctl(3, 0) == 0
        buf = bytearray(8)
        bd.readblocks(2, buf)
        assert bytes(buf) == b"\xff" * 8  # erased flash
        bd.writeblocks(2, b"abc", 5)
        bd.readblocks(2, buf, 3)
        assert bytes(buf) == b"\xff\xffabc\xff\xff\xff"
        bd.writeblocks(3, b"z" * 512)  # simple protocol: whole blocks
        span = bytearray(1024)
        bd.readblocks(2, span)  # a read may span blocks
        assert bytes(span[5:8]) == b"abc" and bytes(span[512:]) == b"z" * 512
        assert bd.ioctl(6, 2) == 0  # erase
        bd.readblocks(2, buf, 3)
        assert bytes(buf) == b"\xff" * 8
        _raises(OSError, bd.readblocks, 8, buf)
        _raises(OSError, bd.writeblocks, 7, b"x" * 2, 511)
        bd.close()
        again = FileBlockDevice(path, 512, None)  # size from the image
        assert again.block_count == 8
        again.readblocks(3, buf, 504)
        assert bytes(buf) == b"z" * 8
        again.close()
        _raises(ValueError, FileBlockDevice, path, 1000, 8)
    finally:
        os.remove(path)


def test_index_codec_round_trip_and_damage():
    data = encode_index(42, [7, 3, 12])
    assert data[:5] == b"RSIX\x01" and len(data) == 11 + 12 + 4
    assert parse_index(data) == (42, [3, 7, 12])
    assert parse_index(encode_index(1, [])) == (1, [])
    for bad in (b"", data[:-1], b"XSIX" + data[4:], data[:9] + b"\x07" + data[10:]):
        assert parse_index(bad) is None
    flipped = bytearray(data)
    flipped[13] ^= 0x40
    assert parse_index(flipped) is None


# -- writing and reading ---------------------------------------------------------------


def test_session_written_reads_back_and_decodes():
    fl = _Flash()
    try:
        st = fl.store()
        assert st.list_sessions() == [] and st.free_bytes() > st.reserve
        frames = []
        sid = st.begin(HEADER)
        enc = r.Encoder()
        tot = _walk(st, enc, 120, frames)
        tot["reason"] = r.END_IDLE
        assert st.end(tot) and st.active is None and not st.full and st.dropped == 0
        fl.reboot()
        st = fl.store()
        [(sid2, size, synced, complete)] = st.list_sessions()
        assert (sid2, synced, complete) == (sid, False, True)
        data = _read_all(st, sid)
        assert len(data) == size
        rep = r.decode_report(data)
        assert rep["ended_cleanly"] and rep["skipped_bytes"] == 0 and rep["torn_bytes"] == 0
        kinds = [k for k, _ in rep["records"]]
        assert kinds[0] == r.HEADER and kinds[-1] == r.END
        h = rep["records"][0][1]
        assert h["session_id"] == sid and h["firmware"] == "0.1.0"
        assert h["config_crc"] == HEADER["config_crc"] and h["fs_mhz"] == 52000
        # exactly the frames the app handed over, in order, between HEADER and END
        assert rep["records"][1:-1] == r.decode(b"".join(frames))
        end = _end_of(rep)
        _same_totals(end, tot)
        assert end["reason"] == r.END_IDLE
        steps = r.steps_of(rep["records"])
        assert len(steps) == 2 * (tot["forward"] + tot["backward"])  # STEP + STEPS
        assert st.read_session(sid, size, 10) == b""
        assert st.read_session(sid + 1, 0, 10) is None
        assert st.recover() == []  # nothing to do on a clean boot
        assert st.begin(HEADER) == sid + 1  # ids never repeat
    finally:
        fl.close()


def test_flush_rule_bounds_data_at_risk():
    fl = _Flash()
    try:
        st = fl.store()
        sid = st.begin(HEADER)
        head = st.committed
        assert st.list_sessions()[0][1] == head  # the HEADER is on flash at once
        enc = r.Encoder()
        for k in range(20):  # 1.9 s of one 15-byte record per 100 ms
            st.append(enc.sway_alert(100 * k, 1, 5))
            st.tick(100 * k)
        assert st.pending() == 300 and st.committed == head
        st.tick(2000)  # 2 s since the last flush: everything goes to flash
        assert st.pending() == 0 and st.committed == head + 300
        assert st.list_sessions()[0][1] == head + 300
        st.tick(2100)
        for _ in range(34):  # 510 bytes, no time passing: below the size threshold
            st.append(enc.sway_alert(2100, 1, 5))
        assert st.pending() == 510
        st.append(enc.sway_alert(2100, 1, 5))  # 525 >= 512: flushed without a tick
        assert st.pending() == 0 and st.committed == head + 300 + 525
        assert st.flushes == 3
        data = st.read_session(sid, 0, 4096)
        assert len(r.decode(data)) == 1 + 20 + 35
        st.end({"t": 2100})
    finally:
        fl.close()


def test_mp_append_and_tick_allocate_nothing():
    # MicroPython only: the walking loop's calls into the store stay off the heap,
    # flushes to LittleFS included.
    if not hasattr(gc, "mem_alloc"):
        raise RuntimeError("skip: needs MicroPython gc.mem_alloc")
    fl = _Flash()
    try:
        st = fl.store()
        st.begin(HEADER)
        enc = r.Encoder()
        for k in range(100):  # warm up: the first flushes, the statvfs estimate
            st.append(enc.sway_alert(100 * k, 1, 5))
            st.tick(100 * k)
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        flushes = st.flushes
        for k in range(100, 1100):
            st.append(enc.sway_alert(100 * k, 1, 5))
            st.tick(100 * k)
        after = gc.mem_alloc()
        gc.enable()
        assert st.flushes - flushes >= 40
        assert after - before == 0, after - before
        st.end()
    finally:
        gc.enable()
        fl.close()


# -- retention and a full filesystem ---------------------------------------------------


def test_full_of_unsynced_sessions_keeps_counting_deletes_nothing():
    fl = _Flash()
    try:
        st = fl.store(headroom=0, flush_ms=20000)
        made = []
        last = None
        for _ in range(40):
            sid, tot = _session(st, 300)
            made.append(sid)
            assert _ids(st) == made  # nothing ever deleted
            if st.full:
                last = (sid, tot)
                break
        assert last is not None, "the filesystem never filled"
        assert len(made) >= 2 and st.evicted == 0 and st.dropped > 0
        sid, tot = last
        rep = r.decode_report(_read_all(st, sid))
        notes = [f for k, f in rep["records"] if k == r.NOTE]
        assert [n["code"] for n in notes] == [r.NOTE_STORAGE_FULL], notes
        assert rep["ended_cleanly"]
        _same_totals(_end_of(rep), tot)  # the app's totals, counted while not logging
        # A walk on a full filesystem: it starts, it counts, it logs what it can.
        sid2, tot2 = _session(st, 60)
        assert st.full and _ids(st)[: len(made)] == made and st.evicted == 0
        assert not st.append(b"\xa5\x5a")  # nothing open: dropped, no exception
        for _, _, synced, complete in st.list_sessions():
            assert complete and not synced
        # the host syncs the oldest while a walk is logging nothing: it resumes, and
        # the synced session is the one that goes
        sid3 = st.begin(HEADER)
        enc = r.Encoder()
        tot3 = _walk(st, enc, 30)
        assert st.full
        assert st.mark_synced(made[0]) and not st.full
        tot3 = _walk(st, enc, 60, totals=tot3)
        assert st.evicted >= 1 and made[0] not in _ids(st) and made[1] in _ids(st)
        assert st.end(tot3) and sid3 > sid2
        kinds = [k for k, _ in r.decode(_read_all(st, sid3))]
        note = kinds.index(r.NOTE)
        assert r.SECONDS in kinds[note:] and kinds[-1] == r.END  # logging went on
    finally:
        fl.close()


def test_oldest_synced_sessions_are_evicted_first():
    fl = _Flash()
    try:
        st = fl.store(headroom=0, flush_ms=20000)
        made = [_session(st, 200)[0] for _ in range(4)]
        for sid in (made[3], made[1], made[2]):  # synced out of order
            assert st.mark_synced(sid)
        assert not st.mark_synced(999)
        assert [s[2] for s in st.list_sessions()] == [False, True, True, True]
        gone = []
        st.begin(HEADER)
        enc = r.Encoder()
        tot = None
        for _ in range(200):
            tot = _walk(st, enc, 20, totals=tot)
            present = _ids(st)
            for sid in made:
                if sid not in present and sid not in gone:
                    gone.append(sid)
            if st.full:
                break
        st.end(tot)
        assert gone == made[1:], gone  # oldest synced first; the unsynced one stays
        assert made[0] in _ids(st) and st.evicted == 3
        assert st.full  # then only unsynced data is left: logging stops, nothing else
    finally:
        fl.close()


def test_begin_evicts_synced_sessions_for_headroom():
    fl = _Flash()
    try:
        st = fl.store(headroom=0, flush_ms=20000)
        made = [_session(st, 200)[0] for _ in range(3)]
        for sid in made:
            st.mark_synced(sid)
        free = st.free_bytes()
        st2 = fl.store(headroom=free - st.reserve + 1, flush_ms=20000)
        assert [s[2] for s in st2.list_sessions()] == [True, True, True]  # index kept
        st2.begin(HEADER)
        assert made[0] not in _ids(st2) and st2.evicted >= 1
        st2.end()
    finally:
        fl.close()


# -- damage -----------------------------------------------------------------------------


def test_damaged_index_is_rebuilt_from_the_files():
    fl = _Flash()
    try:
        st = fl.store()
        made = [_session(st, 20, detail=False)[0] for _ in range(3)]
        st.mark_synced(made[0])
        good = fl.read(INDEX)
        assert parse_index(good) == (made[-1] + 1, [made[0]])
        assert not fl.store().rebuilt
        flipped = bytearray(good)
        flipped[6] ^= 1
        for bad in (b"", b"garbage", good[:-3], bytes(flipped), b"\xff" * len(good)):
            fl.write(INDEX, bad)
            st2 = fl.store()
            assert st2.rebuilt, bad
            # all kept, none evictable
            assert [(s[0], s[2], s[3]) for s in st2.list_sessions()] == [
                (sid, False, True) for sid in made
            ]
            assert parse_index(fl.read(INDEX)) == (made[-1] + 1, [])  # rewritten
        os.remove(fl.path(INDEX))
        st2 = fl.store()
        assert st2.rebuilt and _ids(st2) == made
        sid = st2.begin(HEADER)
        assert sid == made[-1] + 1
        st2.end()
        # an index replace cut short on a filesystem without atomic rename: the
        # temporary copy is used
        fl.write(INDEX_TMP, encode_index(50, [made[1], 77]))
        os.remove(fl.path(INDEX))
        st3 = fl.store()
        assert not st3.rebuilt and [s[2] for s in st3.list_sessions()][:3] == [False, True, False]
        assert st3.begin(HEADER) == 50  # an id is never reused, even if files are gone
        st3.end()
        # an index behind the files (an older copy): ids continue after the files
        fl.write(INDEX, encode_index(2, []))
        st4 = fl.store()
        assert st4.begin(HEADER) == 51
        st4.end()
    finally:
        fl.close()


def test_flipped_byte_mid_session_costs_only_that_record():
    fl = _Flash()
    try:
        st = fl.store()
        sid, tot = _session(st, 60)
        name = "%d.rsl" % sid
        data = fl.read(name)
        whole = r.decode_report(data)["records"]
        mid = len(data) // 2
        frame = data.find(r.SYNC, mid)
        bad = bytearray(data)
        bad[frame + 6] ^= 0x10  # a payload byte of the frame there
        fl.write(name, bytes(bad))
        rep = r.decode_report(_read_all(st, sid))
        assert len(rep["records"]) == len(whole) - 1
        assert rep["bad_spans"] == 1 and 15 <= rep["skipped_bytes"] <= r.MAX_FRAME
        assert rep["ended_cleanly"]
        _same_totals(_end_of(rep), tot)
        assert st.recover() == [] and st.list_sessions()[0][3]  # still complete
    finally:
        fl.close()


def test_recover_closes_sessions_cut_by_power_loss():
    fl = _Flash()
    try:
        st = fl.store()
        sid = st.begin(HEADER)
        enc = r.Encoder()
        tot = _walk(st, enc, 90)
        st.flush()
        st._close_quiet()  # power gone: no END, the file just stops
        name = "%d.rsl" % sid
        with open(fl.path(name), "ab") as f:  # a frame cut short (FAT, POSIX)
            f.write(bytes(enc.step(tot["t"], 1, 5))[:10])
        empty = st._next
        fl.write("%d.rsl" % empty, b"")  # cut before its HEADER was committed
        head_only = empty + 1
        fl.write("%d.rsl" % head_only, bytes(r.Encoder().header(head_only, 0, 0, 0, 0, 0, 0, "")))
        fl.reboot()
        st = fl.store()
        assert [s[3] for s in st.list_sessions()] == [False, False, False]
        assert st.recover() == [sid, head_only]
        assert _ids(st) == [sid, head_only]
        rep = r.decode_report(_read_all(st, sid))
        assert rep["ended_cleanly"] and rep["skipped_bytes"] == 10  # the torn frame
        end = _end_of(rep)
        assert end["reason"] == r.END_RECOVERED
        _same_totals(end, tot)
        rep = r.decode_report(_read_all(st, head_only))
        assert [k for k, _ in rep["records"]] == [r.HEADER, r.END]
        assert _end_of(rep)["forward"] == 0 and _end_of(rep)["t"] == 0
        assert st.recover() == [] and all(s[3] for s in st.list_sessions())
    finally:
        fl.close()


def test_recover_reads_long_sessions_in_windows():
    # A session much longer than the recovery window, with damage straddling a window
    # edge: the totals still come out right.
    fl = _Flash(blocks=32)
    try:
        st = fl.store()
        sid = st.begin(HEADER)
        tot = _walk(st, r.Encoder(), 600)
        st.flush()
        st._close_quiet()
        name = "%d.rsl" % sid
        data = bytearray(fl.read(name))
        assert len(data) > 5 * 2048
        for at in (2047, 2048, 4100):
            data[at] ^= 0xFF
        fl.write(name, bytes(data))
        lost = r.decode_report(bytes(data))
        st = fl.store()
        assert st.recover() == [sid]
        rep = r.decode_report(fl.read(name))
        assert len(rep["records"]) == len(lost["records"]) + 1
        assert r.decode_report(bytes(data))["skipped_bytes"] > 0
        want = r.decode_report(bytes(data))["records"]
        from retrostep_device.storage import session_totals

        expect = session_totals(want)
        end = _end_of(rep)
        for key in ("t", "forward", "backward", "alerts", "walking_s", "compliance_s"):
            assert end[key] == expect[key], key
        assert end["walking_s"] == tot["walking_s"] and end["t"] == tot["t"]
    finally:
        fl.close()


def test_totals_of_window_records_take_the_interval_from_interval_records():
    from retrostep_device.storage import session_totals

    e = r.Encoder()
    frames = [bytes(e.interval(0, r.KIND_FORWARD, 0, 0))]
    frames.append(bytes(e.interval(3000, r.KIND_BACKWARD, 1, 0)))
    for k in range(6):  # seconds 0..5: 1 forward step each, then backward from 3 s
        fwd = 1 if k < 3 else 0
        frames += [bytes(f) for f in [e.window_step(1000 * k + 500, 1 if fwd else -1)] if f]
        frames += [bytes(f) for f in [e.window_second(1000 * k, fwd, 1 - fwd, 60, 40, 100)] if f]
    frames.append(bytes(e.flush_window()))
    tot = session_totals(r.decode(b"".join(frames)))
    assert (tot["forward"], tot["backward"], tot["walking_s"]) == (3, 3, 6)
    assert tot["compliance_s"] == 3 and tot["t"] == 6000


# -- errors never reach the walking loop -------------------------------------------------


def test_filesystem_errors_become_state_not_exceptions():
    st = SessionStore("/no-such-dir-%s/logs" % hexlify(os.urandom(3)).decode())
    assert st.free_bytes() == 0 and st.list_sessions() == [] and st.recover() == []
    sid = st.begin(HEADER)
    assert st.full and st.active == sid
    assert not st.append(bytes(r.Encoder().sway_alert(0, 1, 5)))
    st.tick(5000)
    assert not st.end({"t": 5000, "forward": 3})
    assert st.read_session(sid, 0, 10) is None and not st.mark_synced(sid)
    _raises(ValueError, SessionStore, "/logs", None, 0, None, 2000, 0)


def test_begin_while_open_is_a_programming_error():
    fl = _Flash()
    try:
        st = fl.store()
        bad = dict(HEADER, firmware="x" * 33)
        _raises(ValueError, st.begin, bad)  # a firmware version the HEADER cannot hold
        assert st.active is None
        sid = st.begin(HEADER)
        _raises(ValueError, st.begin, HEADER)
        assert st.active == sid
        st.end()
    finally:
        fl.close()


def test_mp_enospc_from_littlefs_is_caught():
    # MicroPython only: another writer fills the flash behind the store's back (a
    # firmware file copied by mpremote, say), so the store's free-space estimate is
    # stale and its next commit meets LittleFS's own ENOSPC.
    if not MPY:
        raise RuntimeError("skip: needs LittleFS")
    fl = _Flash(blocks=24)
    try:
        st = fl.store(headroom=0, flush_ms=2000)
        sid = st.begin(HEADER)
        enc = r.Encoder()
        tot = _walk(st, enc, 30)
        committed = st.committed
        filler = open(fl.mount + "/filler.bin", "wb")
        chunk = b"\0" * 1024
        try:
            while True:
                filler.write(chunk)
                filler.flush()
        except OSError as e:
            assert e.args[0] == 28
        filler.close()
        for _ in range(10):  # the session file's last block still takes a few KB
            tot = _walk(st, enc, 30, totals=tot)  # must not raise
            if st.full:
                break
        assert st.full and st.err == 28, (st.full, st.err)  # ENOSPC
        assert not st.append(bytes(enc.sway_alert(0, 1, 5)))
        st.end(tot)  # may or may not fit: it must not raise
        os.remove(fl.mount + "/filler.bin")
        fl.reboot()
        st = fl.store()
        st.recover()
        rep = r.decode_report(_read_all(st, sid))
        assert rep["records"][0][0] == r.HEADER and rep["skipped_bytes"] == 0
        assert rep["ended_cleanly"] and st.list_sessions()[0][1] >= committed
    finally:
        fl.close()
