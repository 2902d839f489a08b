"""The device's sync server on a real session store, driven fragment by fragment the way
the radio layer drives it. Portable: under CPython the store lives in a temporary
directory, inside the MicroPython unix port on a LittleFS image (the sim board's flash).
"""

import hashlib
import os
import struct
import sys
from binascii import hexlify

from retrostep_core import config as cfg
from retrostep_core import records as r
from retrostep_core import sync_protocol as sp
from retrostep_device.blockdev import FileBlockDevice
from retrostep_device.storage import SessionStore
from retrostep_device.sync_server import OUTBOX, SyncServer

MPY = sys.implementation.name == "micropython"
KEY = bytes(range(100, 132))
DEVICE_ID = b"\x24\x0a\xc4\x11\x22\x33"
HEADER = {"wall_start": 812345678, "fs_mhz": 52000, "sway_limit_cdeg": 1000,
          "config_version": 1, "config_crc": 0x2DFEF328, "firmware": "0.1.0"}  # fmt: skip
_seq = [0]


def _prng(seed):
    state = [seed]

    def nxt(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n

    return nxt


class _Flash:
    """A small LittleFS image (MicroPython) or a temporary directory (CPython)."""

    def __init__(self, blocks=64):
        _seq[0] += 1
        if MPY:
            import vfs

            self.img = "/tmp/rs-sync-%d-%s.img" % (_seq[0], hexlify(os.urandom(4)).decode())
            self.bdev = FileBlockDevice(self.img, 4096, blocks)
            vfs.VfsLfs2.mkfs(self.bdev)
            self.mount = "/rssync%d" % _seq[0]
            vfs.mount(vfs.VfsLfs2(self.bdev), self.mount)
        else:
            import tempfile

            self.mount = tempfile.mkdtemp(prefix="rs-sync-")
        self.root = self.mount + "/logs"

    def close(self):
        if MPY:
            import vfs

            vfs.umount(self.mount)
            self.bdev.close()
            os.remove(self.img)
        else:
            import shutil

            shutil.rmtree(self.mount)


def _walk(store, seconds, seed=1):
    """A session the way the app logs one: steps batched, a SECONDS summary a second."""
    enc = r.Encoder()
    rnd = _prng(seed)
    fwd = bwd = 0
    for s in range(seconds):
        for k in range(2):
            d = -1 if rnd(3) == 0 else 1
            if d < 0:
                bwd += 1
            else:
                fwd += 1
            f = enc.add_step(s * 1000 + 500 * k + rnd(100), d)
            if f is not None:
                store.append(f)
        f = enc.add_second(s * 1000, 2, 0, 1200, 40 + rnd(20), 100, True, r.KIND_FORWARD)
        if f is not None:
            store.append(f)
            f = enc.flush_steps()
            if f is not None:
                store.append(f)
        store.tick(s * 1000)
    for flush in (enc.flush_seconds, enc.flush_steps):  # one at a time: each returns a view
        f = flush()
        if f is not None:
            store.append(f)
    return fwd, bwd


class _Live:
    def __init__(self):
        self.state = "idle"
        self.session_id = None
        self.forward = 1234
        self.backward = 567
        self.sway_alerts = 3
        self.storage_full = False
        self.battery_mv = 3900
        self.config_problems = 0
        self.errors = 0


class _Device:
    """A store with sessions of 120, 300 and 200 s (complete) and one open (60 s), and
    the callbacks a SyncServer needs, recording what they were asked."""

    def __init__(self, key=KEY, rnd=None, sessions=(120, 300, 200), open_s=60):
        self.flash = _Flash()
        # CPython: a quota stands in for the size of the image
        self.store = SessionStore(self.flash.root, quota=None if MPY else 200000)
        for i, seconds in enumerate(sessions):
            self.store.begin(HEADER)
            _walk(self.store, seconds, i + 1)
            self.store.end({"t": seconds * 1000, "reason": r.END_BUTTON})
        if open_s:
            self.store.begin(HEADER)
            _walk(self.store, open_s, 9)
            self.store.flush()
        self.live = _Live()
        self.config = cfg.defaults()
        self.saved = []
        self.clock = []
        self.buzzes = []
        self.reads = []
        counter = [0]

        def random_bytes(n):
            counter[0] += 1
            return hashlib.sha256(b"nonce %d" % counter[0]).digest()[:n]

        def save(data):
            self.saved.append(data)
            self.config = cfg.decode(data)[0]

        read = self.store.read_session

        def read_session(sid, off, n):
            self.reads.append(n)
            return read(sid, off, n)

        self.store.read_session = read_session
        self.server = SyncServer(
            self.store, self.live, lambda: self.config, save, key, self.clock.append,
            self.buzzes.append, rnd or random_bytes, DEVICE_ID, "retrostep 0.1.0",
            "XIAO ESP32-S3",
        )  # fmt: skip

    def file(self, sid):
        with open(self.flash.root + "/%d.rsl" % sid, "rb") as f:
            return f.read()

    def close(self):
        self.flash.close()


class _Central:
    """The host's side, reduced to fragments: writes requests, collects notifications."""

    def __init__(self, server, mtu=23):
        self.server = server
        self.mtu = mtu
        self.seq = 0
        self.rid = 0
        self.rx = sp.Reassembler(sp.RESPONSE_MAX, sp.RESPONSE_HEADER)
        self.notifications = 0
        server.connect()

    def write(self, frag):
        self.server.receive(frag)

    def send(self, op, body=b""):
        self.rid = (self.rid + 1) & 255
        for f in sp.fragments(sp.request(op, self.rid, body), self.mtu, self.seq):
            self.seq = (self.seq + 1) & 127
            self.write(f)

    def responses(self):
        out = []
        while True:
            f = self.server.next_fragment(self.mtu)
            if f is None:
                return out
            self.notifications += 1
            assert 2 <= len(f) <= self.mtu - 3, len(f)
            res = self.rx.feed(f)
            assert res in (sp.MORE, sp.DONE) and not self.rx.lost, res
            if res == sp.DONE:
                out.append(sp.parse_response(self.rx.message()))

    def call(self, op, body=b""):
        self.send(op, body)
        res = self.responses()
        assert len(res) == 1, res
        rop, rid, status, rbody = res[0]
        assert (rop, rid) == (op, self.rid), (rop, rid, op, self.rid)
        return status, rbody

    def auth(self, key=KEY):
        nh = bytes(range(16))
        st, nd = self.call(sp.OP_AUTH_BEGIN, nh)
        assert st == sp.OK and len(nd) == 16
        st, proof = self.call(sp.OP_AUTH_FINISH, sp.host_proof(key, DEVICE_ID, nh, nd))
        if st == sp.OK:
            assert proof == sp.device_proof(key, DEVICE_ID, nh, nd)
        return st


PROTECTED = (
    (sp.OP_LIST, b"\x00\x00\x00\x00"),
    (sp.OP_READ, struct.pack("<IIH", 1, 0, 100)),
    (sp.OP_VERIFY, b"\x01\x00\x00\x00"),
    (sp.OP_ACK, b"\x01\x00\x00\x00" + bytes(32)),
    (sp.OP_SET_TIME, struct.pack("<I", 800000000)),
    (sp.OP_GET_CONFIG, b""),
    (sp.OP_SET_CONFIG, cfg.encode(cfg.defaults())),
    (sp.OP_STATUS, b""),
    (sp.OP_BUZZ, b"\x01"),
)


# -- who may do what --------------------------------------------------------------------


def test_without_the_key_only_public_information():
    dev = _Device()
    try:
        c = _Central(dev.server)
        st, body = c.call(sp.OP_INFO)
        info = sp.decode_info(body)
        assert st == sp.OK and info["provisioned"] and not info["authenticated"]
        assert info["device_id"] == DEVICE_ID and info["name"] == "retrostep"
        for op, body in PROTECTED:
            st, text = c.call(op, body)
            assert st == sp.ERR_UNAUTHENTICATED, (op, st)
            assert text == b"authenticate first"
        assert c.auth(bytes(32)) == sp.ERR_AUTH_FAILED  # a wrong key
        for op, body in PROTECTED:
            assert c.call(op, body)[0] == sp.ERR_UNAUTHENTICATED
        assert dev.saved == [] and dev.clock == [] and dev.buzzes == []
        assert [s[2] for s in dev.store.list_sessions()] == [False] * 4
        # the public status value carries no counts
        s = sp.parse_status(dev.server.status(False))
        assert not s["counts"] and s["forward"] == 0 and s["unsynced_sessions"] == 3
        assert s["provisioned"] and s["battery_pct"] == 70
        assert dev.server.stats["auth_failed"] == 1
    finally:
        dev.close()


def test_a_device_without_a_key_serves_info_only():
    dev = _Device(key=None)
    try:
        c = _Central(dev.server)
        st, body = c.call(sp.OP_INFO)
        assert st == sp.OK and not sp.decode_info(body)["provisioned"]
        assert c.call(sp.OP_AUTH_BEGIN, bytes(16))[0] == sp.ERR_NOT_PROVISIONED
        assert c.call(sp.OP_AUTH_FINISH, bytes(32))[0] == sp.ERR_NOT_PROVISIONED
        for op, body in PROTECTED:
            assert c.call(op, body)[0] == sp.ERR_NOT_PROVISIONED
        adv, scan = dev.server.advertising()
        p = sp.parse_advertising(adv + scan)
        assert not p["retrostep"]["provisioned"] and p["retrostep"]["unsynced_data"]
    finally:
        dev.close()


def test_mutual_authentication_and_no_replay():
    dev = _Device()
    try:
        c = _Central(dev.server)
        nh = b"N" * 16
        st, nd = c.call(sp.OP_AUTH_BEGIN, nh)
        proof = sp.host_proof(KEY, DEVICE_ID, nh, nd)
        st, dproof = c.call(sp.OP_AUTH_FINISH, proof)
        assert st == sp.OK and dproof == sp.device_proof(KEY, DEVICE_ID, nh, nd)
        assert sp.decode_info(c.call(sp.OP_INFO)[1])["authenticated"]
        assert c.call(sp.OP_STATUS)[0] == sp.OK
        # the same AUTH_FINISH again in this connection: its nonce is spent
        assert c.call(sp.OP_AUTH_FINISH, proof)[0] == sp.ERR_SEQUENCE
        # a new connection starts unauthenticated
        dev.server.disconnect()
        c = _Central(dev.server)
        assert c.call(sp.OP_STATUS)[0] == sp.ERR_UNAUTHENTICATED
        # AUTH_FINISH before any AUTH_BEGIN
        assert c.call(sp.OP_AUTH_FINISH, proof)[0] == sp.ERR_SEQUENCE
        # the old conversation replayed: same host nonce, old proof -> a fresh device
        # nonce makes it wrong
        st, nd2 = c.call(sp.OP_AUTH_BEGIN, nh)
        assert st == sp.OK and nd2 != nd
        assert c.call(sp.OP_AUTH_FINISH, proof)[0] == sp.ERR_AUTH_FAILED
        assert c.call(sp.OP_LIST, bytes(4))[0] == sp.ERR_UNAUTHENTICATED
        # one try per nonce: the right proof after a wrong one needs a new AUTH_BEGIN
        assert c.call(sp.OP_AUTH_FINISH, sp.host_proof(KEY, DEVICE_ID, nh, nd2))[0] == \
            sp.ERR_SEQUENCE  # fmt: skip
        assert c.auth() == sp.OK
        # a new AUTH_BEGIN withdraws the authentication until it is finished
        assert c.call(sp.OP_AUTH_BEGIN, nh)[0] == sp.OK
        assert c.call(sp.OP_STATUS)[0] == sp.ERR_UNAUTHENTICATED
        assert dev.server.stats["auth_ok"] == 2 and dev.server.stats["auth_failed"] == 1
    finally:
        dev.close()


def test_a_repeating_random_source_is_refused():
    dev = _Device(rnd=lambda n: b"\x07" * n)
    try:
        c = _Central(dev.server)
        assert c.call(sp.OP_AUTH_BEGIN, bytes(16))[0] == sp.OK
        st, text = c.call(sp.OP_AUTH_BEGIN, bytes(16))
        assert st == sp.ERR_INTERNAL and text == b"random source failed"
        dev.server.disconnect()
        c = _Central(dev.server)
        assert c.call(sp.OP_AUTH_BEGIN, bytes(16))[0] == sp.ERR_INTERNAL  # never reused
    finally:
        dev.close()


# -- sessions ---------------------------------------------------------------------------


def _read_all(c, sid, size, length):
    out = b""
    while len(out) < size:
        st, body = c.call(sp.OP_READ, struct.pack("<IIH", sid, len(out), length))
        assert st == sp.OK and body, (st, body)
        out += body
    return out


def test_list_read_verify_ack():
    dev = _Device()
    try:
        for mtu in (23, 185, 247):
            dev.server.disconnect()
            c = _Central(dev.server, mtu)
            assert c.auth() == sp.OK
            st, body = c.call(sp.OP_LIST, bytes(4))
            entries, more = sp.decode_list(body)
            assert st == sp.OK and not more
            assert [(e[0], e[2]) for e in entries] == [
                (1, sp.SESSION_COMPLETE), (2, sp.SESSION_COMPLETE), (3, sp.SESSION_COMPLETE),
                (4, sp.SESSION_RECORDING)] or mtu != 23  # fmt: skip
            for sid, size, _ in entries:
                data = _read_all(c, sid, size, 1000 if sid % 2 else 65535)
                assert data == dev.file(sid)
                st, body = c.call(sp.OP_VERIFY, struct.pack("<I", sid))
                vsid, vsize, vflags, digest = sp.decode_verify(body)
                assert (vsid, vsize) == (sid, size)
                assert digest == hashlib.sha256(data).digest()
                assert c.call(sp.OP_READ, struct.pack("<IIH", sid, size, 10)) == (sp.OK, b"")
        # READ of 1000 bytes at MTU 247 = 5 notifications (5 + 1000 bytes, 243 a piece)
        n0 = c.notifications
        assert len(c.call(sp.OP_READ, struct.pack("<IIH", 2, 0, 1000))[1]) == 1000
        assert c.notifications - n0 == 5
        # the reads from flash were at most a window each
        assert max(dev.reads) <= 2048
        # ACK rules
        sizes = dict((e[0], e[1]) for e in sp.decode_list(c.call(sp.OP_LIST, bytes(4))[1])[0])
        d1 = hashlib.sha256(dev.file(1)).digest()
        d2 = hashlib.sha256(dev.file(2)).digest()
        assert c.call(sp.OP_ACK, struct.pack("<I", 1) + d1)[0] == sp.ERR_SEQUENCE
        c.call(sp.OP_VERIFY, struct.pack("<I", 2))
        assert c.call(sp.OP_ACK, struct.pack("<I", 1) + d1)[0] == sp.ERR_SEQUENCE
        assert c.call(sp.OP_ACK, struct.pack("<I", 2) + d1)[0] == sp.ERR_DIGEST
        assert c.call(sp.OP_ACK, struct.pack("<I", 2) + d2) == (sp.OK, b"")
        assert c.call(sp.OP_ACK, struct.pack("<I", 2) + d2) == (sp.OK, b"")  # idempotent
        c.call(sp.OP_VERIFY, struct.pack("<I", 4))
        assert c.call(sp.OP_ACK, struct.pack("<I", 4) + bytes(32))[0] == sp.ERR_INCOMPLETE
        assert c.call(sp.OP_ACK, struct.pack("<I", 9) + bytes(32))[0] == sp.ERR_NO_SESSION
        assert [s[2] for s in dev.store.list_sessions()] == [False, True, False, False]
        entries = sp.decode_list(c.call(sp.OP_LIST, bytes(4))[1])[0]
        assert entries[1][2] == sp.SESSION_COMPLETE | sp.SESSION_SYNCED
        assert dev.server.summary()[:2] == (2, sizes[1] + sizes[3])
        # errors of READ / VERIFY / LIST
        assert c.call(sp.OP_READ, struct.pack("<IIH", 9, 0, 10))[0] == sp.ERR_NO_SESSION
        assert c.call(sp.OP_READ, struct.pack("<IIH", 1, sizes[1] + 1, 10))[0] == sp.ERR_RANGE
        assert c.call(sp.OP_VERIFY, struct.pack("<I", 9))[0] == sp.ERR_NO_SESSION
        st, body = c.call(sp.OP_LIST, struct.pack("<I", 3))
        assert [e[0] for e in sp.decode_list(body)[0]] == [3, 4]
        for op, bad in ((sp.OP_LIST, b""), (sp.OP_READ, bytes(9)), (sp.OP_VERIFY, bytes(5)),
                        (sp.OP_ACK, bytes(35)), (sp.OP_STATUS, b"x")):  # fmt: skip
            assert c.call(op, bad)[0] == sp.ERR_MALFORMED, op
    finally:
        dev.close()


def test_read_is_clamped_and_streams_in_windows():
    dev = _Device(sessions=(2400,), open_s=0)
    try:
        size = dev.store.list_sessions()[0][1]
        assert size > sp.READ_MAX
        c = _Central(dev.server, 247)
        c.auth()
        dev.reads[:] = []
        st, body = c.call(sp.OP_READ, struct.pack("<IIH", 1, 0, 65535))
        assert st == sp.OK and len(body) == sp.READ_MAX
        assert dev.reads == [2048] * 16  # never more than a window in RAM
        assert body == dev.file(1)[: sp.READ_MAX]
        # handle(): the same answer as one whole message
        req = sp.request(sp.OP_READ, 77, struct.pack("<IIH", 1, 100, 5000))
        assert sp.parse_response(dev.server.handle(req)) == (sp.OP_READ, 77, sp.OK,
                                                               dev.file(1)[100:5100])
    finally:
        dev.close()


def test_a_session_that_disappears_mid_read_ends_the_stream_with_an_error():
    dev = _Device(sessions=(300,), open_s=0)
    try:
        c = _Central(dev.server, 23)
        c.auth()
        c.send(sp.OP_READ, struct.pack("<IIH", 1, 0, 4000))
        got = b""
        for _ in range(50):  # part of the response
            got += dev.server.next_fragment(23)[1:]
        before = dev.file(1)
        os.remove(dev.flash.root + "/1.rsl")  # evicted (or the flash failed) meanwhile
        rx = sp.Reassembler(sp.RESPONSE_MAX, sp.RESPONSE_HEADER)
        frags = []
        while True:
            f = dev.server.next_fragment(23)
            if f is None:
                break
            frags.append(f)
        # the rest of the first window, then a START: the same request, ERR_STORAGE
        starts = [i for i, f in enumerate(frags) if f[0] & sp.START]
        assert len(starts) == 1
        k = starts[0]
        for f in frags[k:]:
            res = rx.feed(f)
        assert res == sp.DONE
        op, rid, st, text = sp.parse_response(rx.message())
        assert (op, rid, st) == (sp.OP_READ, c.rid, sp.ERR_STORAGE)
        assert text == b"session 1 unreadable"
        data = got[5:] + b"".join(f[1:] for f in frags[:k])
        assert len(data) == 2048 and data == before[:2048]  # what came was right
        # the server keeps going
        assert c.call(sp.OP_INFO)[0] == sp.OK
    finally:
        dev.close()


# -- settings ---------------------------------------------------------------------------


def test_time_config_status_and_buzz():
    dev = _Device()
    try:
        c = _Central(dev.server)
        c.auth()
        assert c.call(sp.OP_SET_TIME, struct.pack("<I", 1000))[0] == sp.ERR_INVALID
        assert dev.clock == [] and not dev.server.clock_set
        assert c.call(sp.OP_SET_TIME, struct.pack("<I", 815000000)) == (sp.OK, b"")
        assert dev.clock == [815000000]
        assert sp.decode_info(c.call(sp.OP_INFO)[1])["clock_set"]
        st, body = c.call(sp.OP_GET_CONFIG)
        assert (st, body) == (sp.OK, cfg.encode(cfg.defaults()))
        new = cfg.defaults()
        new["device_name"] = "Anna's clip"
        new["program"] = [("forward", 300), ("backward", 60)]
        new["sway_limit_deg"] = 12.5
        assert c.call(sp.OP_SET_CONFIG, cfg.encode(new)) == (sp.OK, b"")
        assert dev.saved == [cfg.encode(new)]
        assert c.call(sp.OP_GET_CONFIG)[1] == cfg.encode(new)
        assert sp.decode_info(c.call(sp.OP_INFO)[1])["name"] == "Anna's clip"
        # invalid configs are refused with their problems and never saved
        bad = bytearray(cfg.encode(new))
        bad[8] ^= 1
        st, text = c.call(sp.OP_SET_CONFIG, bytes(bad))
        assert st == sp.ERR_INVALID and b"CRC" in text
        out_of_range = bytearray(cfg.encode(new))
        out_of_range[11] = 60  # 60 Hz: not a sample rate the IMU has
        body = bytes(out_of_range[:-4])
        body += struct.pack("<I", r.crc32(body))
        st, text = c.call(sp.OP_SET_CONFIG, body)
        assert st == sp.ERR_INVALID and text.startswith(b"sample_rate_hz"), text
        assert c.call(sp.OP_SET_CONFIG, b"")[0] == sp.ERR_MALFORMED
        assert len(dev.saved) == 1
        # status: the full view
        st, body = c.call(sp.OP_STATUS)
        s = sp.parse_status(body)
        assert s["counts"] and (s["forward"], s["backward"], s["sway_alerts"]) == (1234, 567, 3)
        assert s["clock_set"] and s["unsynced_sessions"] == 3 and s["free_kib"] > 0
        dev.live.storage_full = True
        dev.live.config_problems = 2
        s = sp.parse_status(c.call(sp.OP_STATUS)[1])
        assert s["storage_full"] and s["config_defaults"]
        # buzz
        assert c.call(sp.OP_BUZZ, b"\x00")[0] == sp.ERR_INVALID
        assert c.call(sp.OP_BUZZ, b"\x0b")[0] == sp.ERR_INVALID
        assert c.call(sp.OP_BUZZ, b"\x03") == (sp.OK, b"")
        assert dev.buzzes == [3]
    finally:
        dev.close()


def test_a_board_without_a_clock_and_the_provisioned_name():
    dev = _Device()
    try:
        dev.server.set_clock = None
        dev.server.default_name = "retrostep-3a7f"
        c = _Central(dev.server)
        c.auth()
        st, text = c.call(sp.OP_SET_TIME, struct.pack("<I", 815000000))
        assert st == sp.ERR_UNSUPPORTED and not dev.server.clock_set
        # the provisioned name stands in for the default config name ...
        assert sp.decode_info(c.call(sp.OP_INFO)[1])["name"] == "retrostep-3a7f"
        adv, scan = dev.server.advertising()
        assert sp.parse_advertising(scan)["name"] == "retrostep-3a7f"
        # ... but a name the wearer chose wins
        new = cfg.defaults()
        new["device_name"] = "Anna's clip"
        assert c.call(sp.OP_SET_CONFIG, cfg.encode(new))[0] == sp.OK
        assert dev.server.name() == "Anna's clip"
        assert sp.parse_advertising(dev.server.advertising()[1])["name"] == "Anna's clip"
    finally:
        dev.close()


def test_callback_failures_become_error_responses():
    dev = _Device()
    try:
        def boom(*args):
            raise OSError(5)

        def bug(*args):
            raise KeyError("bug")

        dev.server.save_config = boom
        dev.server.load_config = boom
        dev.server.set_clock = bug
        c = _Central(dev.server)
        assert c.call(sp.OP_INFO)[0] == sp.OK  # the name is left out
        c.auth()
        assert c.call(sp.OP_SET_CONFIG, cfg.encode(cfg.defaults()))[0] == sp.ERR_STORAGE
        assert c.call(sp.OP_GET_CONFIG)[0] == sp.ERR_STORAGE
        st, text = c.call(sp.OP_SET_TIME, struct.pack("<I", 815000000))
        assert st == sp.ERR_INTERNAL and b"bug" in text
        assert dev.server.stats["internal"] == 1
        assert c.call(sp.OP_STATUS)[0] == sp.OK
    finally:
        dev.close()


# -- framing errors ---------------------------------------------------------------------


def test_framing_errors_are_answered():
    dev = _Device()
    try:
        dev.server.receive(sp.fragments(sp.request(sp.OP_INFO, 1), 23)[0])  # not connected
        assert dev.server.stats["ignored"] == 1 and dev.server.next_fragment(23) is None
        c = _Central(dev.server)
        long_req = sp.request(sp.OP_SET_CONFIG, 40, cfg.encode(cfg.defaults()))
        frags = sp.fragments(long_req, 23, 0)
        assert len(frags) == 2
        # a continuation with nothing in progress
        c.write(frags[1])
        assert c.responses() == [(0, 0, sp.ERR_FRAMING, b"fragment out of sequence")]
        # a gap: a continuation with the wrong seq
        c.write(frags[0])
        c.write(bytes((0x05,)) + frags[1][1:])
        assert c.responses() == [(sp.OP_SET_CONFIG, 40, sp.ERR_FRAMING,
                                  b"fragment out of sequence")]  # fmt: skip
        # cut short: a new request before the end of the last one; both answered
        c.write(frags[0])
        c.write(sp.fragments(sp.request(sp.OP_INFO, 41), 23, 9)[0])
        res = c.responses()
        assert res[0] == (sp.OP_SET_CONFIG, 40, sp.ERR_FRAMING, b"request cut short")
        assert res[1][:3] == (sp.OP_INFO, 41, sp.OK)
        # too long, too short, empty, unknown op, INFO with a body
        c.write(bytes((0x80, 0xFF, 0xFF, 0x22, 42)))
        c.write(bytes((0x01,)) + bytes(19))  # the rest of a too-long message: skipped quietly
        c.write(bytes((0x80, 0x01)))
        c.write(b"")
        c.write(sp.fragments(sp.request(0x7E, 43), 23, 0)[0])
        c.write(sp.fragments(sp.request(sp.OP_INFO, 44, b"x"), 23, 0)[0])
        res = c.responses()
        assert [x[:3] for x in res] == [
            (sp.OP_SET_CONFIG, 42, sp.ERR_TOO_LARGE), (0, 0, sp.ERR_FRAMING),
            (0, 0, sp.ERR_FRAMING), (0x7E, 43, sp.ERR_UNKNOWN_OP),
        ]  # fmt: skip
        # (the fifth was dropped: the outbox holds OUTBOX responses)
        assert OUTBOX == 4 and dev.server.stats["dropped"] == 1
        # then all is well again
        assert c.call(sp.OP_INFO)[0] == sp.OK
        assert c.auth() == sp.OK
    finally:
        dev.close()


def test_the_outbox_is_bounded_and_a_disconnect_drops_it():
    dev = _Device()
    try:
        c = _Central(dev.server)
        for _ in range(10):
            c.send(sp.OP_INFO)
        assert len(c.responses()) == OUTBOX
        assert dev.server.stats["dropped"] == 10 - OUTBOX
        c.send(sp.OP_INFO)
        c.send(sp.OP_INFO)
        assert dev.server.busy()
        dev.server.disconnect()
        assert not dev.server.busy() and dev.server.next_fragment(23) is None
        c = _Central(dev.server)
        assert c.call(sp.OP_INFO)[0] == sp.OK
    finally:
        dev.close()


# -- fuzz -------------------------------------------------------------------------------


def _fuzz_write(rnd, seq, valid):
    """One control-point write: random bytes, a random START, a valid fragment sent
    with its seq damaged, a mutated valid request, or a valid request (as fragments)."""
    kind = rnd(6)
    if kind == 0:
        return [bytes(rnd(256) for _ in range(rnd(25)))]
    if kind == 1:
        n = rnd(30)
        return [bytes((0x80 | rnd(128), rnd(256), rnd(3))) + bytes(rnd(256) for _ in range(n))]
    op, body = valid[rnd(len(valid))]
    frags = sp.fragments(sp.request(op, rnd(256), body), 23 + rnd(230), seq)
    if kind == 2:
        f = bytearray(frags[rnd(len(frags))])
        f[0] = rnd(256)
        return [bytes(f)]
    if kind == 3:
        f = bytearray(frags[0])
        f[1 + rnd(len(f) - 1)] = rnd(256)
        return [bytes(f)] + frags[1:]
    return frags


def test_fuzz_random_writes_never_break_the_server():
    n = 3000 if MPY else 10000
    dev = _Device(sessions=(60, 30), open_s=20)
    try:
        rnd = _prng(2024)
        valid = list(PROTECTED) + [
            (sp.OP_INFO, b""), (sp.OP_AUTH_BEGIN, bytes(16)), (sp.OP_AUTH_FINISH, bytes(32)),
            (sp.OP_READ, struct.pack("<IIH", 1, 0, 60000)),
            (sp.OP_READ, struct.pack("<IIH", 2, 100, 300)),
            (sp.OP_READ, struct.pack("<IIH", 3, 0, 5000)),
            (sp.OP_VERIFY, struct.pack("<I", 2)),
            (sp.OP_ACK, struct.pack("<I", 1) + bytes(32)),
        ]  # fmt: skip
        srv = dev.server
        srv.connect()
        rx = sp.Reassembler(sp.RESPONSE_MAX, sp.RESPONSE_HEADER)
        state = {"responses": 0, "seq": 0, "authed": 0}

        def drain(mtu):
            out = []
            while True:
                f = srv.next_fragment(mtu)
                if f is None:
                    return out
                assert len(f) <= mtu - 3
                res = rx.feed(f)
                assert res in (sp.MORE, sp.DONE), res
                if res == sp.DONE:
                    p = sp.parse_response(rx.message())
                    assert p is not None and p[2] in sp.STATUS_NAMES
                    state["responses"] += 1
                    out.append(p)

        def send(op, body):
            for f in sp.fragments(sp.request(op, 200, body), 23, state["seq"]):
                srv.receive(f)
                state["seq"] = (state["seq"] + 1) & 127
            return drain(23)

        for _ in range(n):
            if rnd(500) == 0:
                srv.disconnect()
                srv.connect()
                rx.reset()
            if rnd(40) == 0:  # authenticate now and then: the protected ops get fuzzed too
                nd = send(sp.OP_AUTH_BEGIN, bytes(16))[-1][3]
                if send(sp.OP_AUTH_FINISH, sp.host_proof(KEY, DEVICE_ID, bytes(16), nd))[-1][2] \
                        == sp.OK:  # fmt: skip
                    state["authed"] += 1
            for w in _fuzz_write(rnd, state["seq"], valid):
                srv.receive(w)
                state["seq"] = (state["seq"] + 1) & 127
            drain(23 + rnd(230))
        st = srv.stats
        assert st["internal"] == 0, st
        assert state["responses"] > n // 2, (state, st)
        assert st["errors"] > n // 3 and state["authed"] > n // 100, (state, st)
        # the noise acknowledged nothing; what it saved or set was valid
        assert [s[2] for s in dev.store.list_sessions()] == [False, False, False]
        for data in dev.saved:
            assert cfg.decode(data)[1] == []
        assert min(dev.clock + [sp.TIME_MIN]) >= sp.TIME_MIN
        assert all(1 <= b <= sp.BUZZ_MAX for b in dev.buzzes)
        # and it still serves a real central
        srv.disconnect()
        c = _Central(srv, 185)
        assert c.auth() == sp.OK
        size = sp.decode_list(c.call(sp.OP_LIST, bytes(4))[1])[0][0][1]
        assert _read_all(c, 1, size, 700) == dev.file(1)
        # the store keeps logging while all this goes on
        _walk(dev.store, 30, 5)
        dev.store.flush()
        assert dev.store.list_sessions()[-1][1] > 0
    finally:
        dev.close()
