"""The device side of the sync protocol (``docs/sync-protocol.md``), transport-agnostic.

:class:`SyncServer` answers requests from the session store, the app's live counters,
the stored config and the provisioned key. It knows nothing of BLE: the radio layer
(:mod:`ble_service`) calls

* :meth:`SyncServer.connect` / :meth:`SyncServer.disconnect` when a central comes and
  goes (all per-connection state, authentication included, starts afresh);
* :meth:`SyncServer.receive` with every control-point write (one fragment);
* :meth:`SyncServer.next_fragment` with the ATT MTU until it returns None, notifying
  each fragment on the data characteristic.

Responses wait in a bounded outbox (``OUTBOX``) and go out one fragment at a time: a
READ streams its session from flash ``read_window`` bytes at a time, so a 50 KB session
never sits in RAM. :meth:`SyncServer.handle` answers one whole request message with the
whole response message (tests, and any transport that carries whole messages).

Nothing raises out of ``receive``, ``next_fragment`` or ``handle``: malformed, out of
order and unauthenticated requests get an error response, and an unexpected exception
in a handler becomes ERR_INTERNAL (counted in ``stats``), so the device keeps counting.
"""

import hashlib
import struct

from retrostep_core import config as cfg
from retrostep_core import sync_protocol as sp
from retrostep_core.compat import const

OUTBOX = const(4)  # responses waiting to be sent; a request beyond that is dropped
READ_WINDOW = const(2048)  # bytes read from flash at a time (READ and VERIFY)

_SYNCED = sp.SESSION_SYNCED
_COMPLETE = sp.SESSION_COMPLETE
_RECORDING = sp.SESSION_RECORDING


class SyncServer:
    """The sync protocol on top of a :class:`storage.SessionStore`.

    ``live``: the app's :class:`app.Live` (read only). ``load_config()`` returns the
    stored config dict; ``save_config(data)`` stores validated config bytes (both may
    raise OSError). ``key``: the provisioned key (bytes, 16..64) or None: without one,
    only INFO works. ``set_clock(seconds)``: seconds since 2000-01-01 UTC (None: the
    board has no clock to set, SET_TIME answers ERR_UNSUPPORTED).
    ``buzz(count)``: play the find-me pattern ``count`` times. ``random_bytes(n)``: n
    unpredictable bytes (``os.urandom``). ``device_id``: bytes (at most 16) naming this
    device, part of every proof; ``firmware`` and ``model``: INFO strings;
    ``default_name``: the name shown (INFO, advertising) while the config's device name
    is the default one (the provisioned name tells devices apart).
    """

    def __init__(self, store, live, load_config, save_config, key, set_clock, buzz,
                 random_bytes, device_id=b"", firmware="", model="",
                 read_window=READ_WINDOW, default_name=None):  # fmt: skip
        if key is not None and not 16 <= len(key) <= 64:
            raise ValueError("key: 16..64 bytes or None")
        if len(device_id) > 16 or read_window < 16:
            raise ValueError("device_id: at most 16 bytes; read_window: at least 16")
        self.store = store
        self.live = live
        self.load_config = load_config
        self.save_config = save_config
        self.key = bytes(key) if key is not None else None
        self.set_clock = set_clock
        self.buzz = buzz
        self.random_bytes = random_bytes
        self.device_id = bytes(device_id)
        self.firmware = firmware
        self.model = model
        self.read_window = read_window
        self.default_name = default_name
        self._name = None  # cached: advertising asks every second, the file changes rarely
        self.clock_set = False
        self.connected = False
        self.stats = {
            "connections": 0, "requests": 0, "errors": 0, "framing": 0, "dropped": 0,
            "auth_ok": 0, "auth_failed": 0, "internal": 0, "ignored": 0, "acked": 0,
        }  # fmt: skip
        self._rx = sp.Reassembler(sp.REQUEST_MAX, sp.REQUEST_HEADER)
        self._last_nonce = b""
        self._sessions = {}  # id -> (size, flags), from the last listing
        self._summary = None  # (unsynced sessions, their bytes, free bytes or None)
        self._reset()

    # -- connection state ---------------------------------------------------------------

    def _reset(self):
        self.authenticated = False
        self._nh = None  # host nonce of the AUTH_BEGIN in progress
        self._nd = None  # device nonce of it: spent by the first AUTH_FINISH
        self._verified = None  # (id, digest) of the last VERIFY of a complete session
        self._rx.reset()
        self._out = []
        self._cur = None  # the response being sent: [op, id, status, body, id, off, left]
        self._seq = 0

    def connect(self):
        """A central connected: a fresh, unauthenticated state."""
        self._reset()
        self.connected = True
        self.stats["connections"] += 1

    def disconnect(self):
        """The link is gone: drop everything in flight (nothing of it was acknowledged)."""
        self._reset()
        self.connected = False

    def busy(self):
        """Whether a response is waiting or being sent."""
        return self._cur is not None or len(self._out) > 0

    # -- fragments in -------------------------------------------------------------------

    def receive(self, fragment):
        """One control-point write. Completed requests are answered into the outbox."""
        if not self.connected:
            self.stats["ignored"] += 1
            return
        try:
            rx = self._rx
            res = rx.feed(fragment)
            if rx.lost:
                self._framing(rx.lost_op, rx.lost_rid, "request cut short")
            if res == sp.DONE:
                self._queue(self._respond(rx.message()))
            elif res == sp.GAP:
                self._framing(rx.op, rx.rid, "fragment out of sequence")
            elif res == sp.BAD:
                self._framing(rx.op, rx.rid, "bad fragment")
            elif res == sp.TOO_LONG:
                self.stats["framing"] += 1
                self._queue([rx.op, rx.rid, sp.ERR_TOO_LARGE,
                             sp.text_body("requests are at most %d bytes" % sp.REQUEST_MAX)])
        except Exception as e:  # never out of here: the radio layer must keep running
            self.stats["internal"] += 1
            self._queue([0, 0, sp.ERR_INTERNAL, sp.text_body(repr(e))])

    def _framing(self, op, rid, text):
        self.stats["framing"] += 1
        self._queue([op, rid, sp.ERR_FRAMING, sp.text_body(text)])

    def _queue(self, entry):
        if entry[2] != sp.OK:
            self.stats["errors"] += 1
        if len(self._out) >= OUTBOX:
            self.stats["dropped"] += 1
            return
        self._out.append(entry)

    # -- fragments out ------------------------------------------------------------------

    def next_fragment(self, mtu):
        """The next notification value (bytes of at most ``mtu - 3``), or None."""
        if not self.connected:
            return None
        try:
            return self._next(sp.fragment_room(mtu))
        except Exception as e:  # a bug while streaming: end that response with an error
            self.stats["internal"] += 1
            cur = self._cur
            self._cur = None
            if cur is not None:
                self._out.insert(0, [cur[0], cur[1], sp.ERR_INTERNAL, sp.text_body(repr(e))])
            return None

    def _start(self, entry):
        op, rid, status, body = entry[0], entry[1], entry[2], entry[3]
        n = len(body) if body is not None else entry[6]
        self._hdr = struct.pack("<HBBB", 3 + n, op, rid, status)
        self._hpos = 0
        self._body = body
        self._bpos = 0
        self._left = n  # body bytes still to send
        self._win = b""
        self._wpos = 0
        if body is None:
            self._sid = entry[4]
            self._off = entry[5]
        self._cur = entry

    def _next(self, room):
        if self._cur is None:
            if not self._out:
                return None
            self._start(self._out.pop(0))
        frag = bytearray(1 + room)
        frag[0] = self._seq | (sp.START if self._hpos == 0 else 0)
        k = 1
        end = 1 + room
        hdr = self._hdr
        while k < end and self._hpos < len(hdr):
            frag[k] = hdr[self._hpos]
            self._hpos += 1
            k += 1
        while k < end and self._left > 0:
            if self._body is not None:
                src = self._body
                pos = self._bpos
            else:
                if self._wpos >= len(self._win):
                    want = self._left if self._left < self.read_window else self.read_window
                    data = self.store.read_session(self._sid, self._off, want)
                    if not data:
                        return self._abort(frag, k, room)
                    self._win = data
                    self._wpos = 0
                    self._off += len(data)
                src = self._win
                pos = self._wpos
            n = len(src) - pos
            if n > end - k:
                n = end - k
            if n > self._left:
                n = self._left
            frag[k : k + n] = src[pos : pos + n]
            k += n
            self._left -= n
            if self._body is not None:
                self._bpos += n
            else:
                self._wpos += n
        if self._hpos >= len(hdr) and self._left <= 0:
            self._cur = None
            self._win = b""
            self._body = None
        self._seq = (self._seq + 1) & sp.SEQ_MASK
        return bytes(frag) if k == end else bytes(frag[:k])

    def _abort(self, frag, k, room):
        """The session could not be read any further (evicted, or the filesystem
        failed): end the stream here and answer the same request with ERR_STORAGE. The
        receiver sees a START before the end of the message it was reassembling."""
        cur = self._cur
        self._cur = None
        self._win = b""
        self.stats["errors"] += 1
        self._out.insert(0, [cur[0], cur[1], sp.ERR_STORAGE,  # type: ignore[index]
                             sp.text_body("session %d unreadable" % self._sid)])
        if k > 1:
            self._seq = (self._seq + 1) & sp.SEQ_MASK
            return bytes(frag[:k])
        return self._next(room)

    # -- whole messages -----------------------------------------------------------------

    def handle(self, request):
        """Answer one whole request message with the whole response message (bytes).
        Uses this connection's state (authentication, the last VERIFY)."""
        try:
            entry = self._respond(bytes(request))
        except Exception as e:
            self.stats["internal"] += 1
            entry = [0, 0, sp.ERR_INTERNAL, sp.text_body(repr(e))]
        if entry[2] != sp.OK:
            self.stats["errors"] += 1
        body = entry[3]
        if body is None:
            parts = []
            sid, off, left = entry[4], entry[5], entry[6]
            while left > 0:
                data = self.store.read_session(sid, off, min(left, self.read_window))
                if not data:
                    return sp.response(entry[0], entry[1], sp.ERR_STORAGE,
                                       sp.text_body("session %d unreadable" % sid))
                parts.append(data)
                off += len(data)
                left -= len(data)
            body = b"".join(parts)
        return sp.response(entry[0], entry[1], entry[2], body)

    def _respond(self, msg):
        """The response entry for a whole request: ``[op, id, status, body]`` or, for a
        READ stream, ``[op, id, OK, None, session, offset, length]``."""
        p = sp.parse_request(msg)
        if p is None:
            self.stats["framing"] += 1
            return [0, 0, sp.ERR_FRAMING, sp.text_body("bad request header")]
        op, rid, body = p
        self.stats["requests"] += 1
        try:
            res = self._op(op, body)
        except Exception as e:  # a bug or an unexpected failure: answer, keep running
            self.stats["internal"] += 1
            res = (sp.ERR_INTERNAL, sp.text_body(repr(e)))
        if len(res) == 2:
            return [op, rid, res[0], res[1]]
        return [op, rid, sp.OK, None, res[0], res[1], res[2]]

    # -- operations ---------------------------------------------------------------------

    def _op(self, op, body):
        """``(status, body)`` or, for a READ stream, ``(session, offset, length)``."""
        if op == sp.OP_INFO:
            return self._info(body)
        if op == sp.OP_AUTH_BEGIN:
            return self._auth_begin(body)
        if op == sp.OP_AUTH_FINISH:
            return self._auth_finish(body)
        if op not in sp.OP_NAMES or op == sp.OP_NONE:
            return sp.ERR_UNKNOWN_OP, sp.text_body("unknown op 0x%02x" % op)
        if self.key is None:
            return sp.ERR_NOT_PROVISIONED, sp.text_body("no key: provision with retrostep flash")
        if not self.authenticated:
            return sp.ERR_UNAUTHENTICATED, sp.text_body("authenticate first")
        if op == sp.OP_LIST:
            return self._list(body)
        if op == sp.OP_READ:
            return self._read(body)
        if op == sp.OP_VERIFY:
            return self._verify(body)
        if op == sp.OP_ACK:
            return self._ack(body)
        if op == sp.OP_SET_TIME:
            return self._set_time(body)
        if op == sp.OP_GET_CONFIG:
            return self._get_config(body)
        if op == sp.OP_SET_CONFIG:
            return self._set_config(body)
        if op == sp.OP_STATUS:
            if body:
                return _malformed("STATUS takes no body")
            return sp.OK, self.status(True)
        return self._buzz(body)  # the last op in OP_NAMES

    def _info(self, body):
        if body:
            return _malformed("INFO takes no body")
        flags = 0
        if self.key is not None:
            flags |= sp.INFO_PROVISIONED
        if self.authenticated:
            flags |= sp.INFO_AUTHENTICATED
        if self.clock_set:
            flags |= sp.INFO_CLOCK_SET
        return sp.OK, sp.encode_info(flags, self.device_id, self.firmware, self.model,
                                     self.name())  # fmt: skip

    def _auth_begin(self, body):
        if len(body) != sp.NONCE_LEN:
            return _malformed("AUTH_BEGIN takes a %d-byte nonce" % sp.NONCE_LEN)
        if self.key is None:
            return sp.ERR_NOT_PROVISIONED, sp.text_body("no key: provision with retrostep flash")
        self.authenticated = False  # a new exchange replaces whatever came before
        self._nd = None
        nd = bytes(self.random_bytes(sp.NONCE_LEN))
        if len(nd) != sp.NONCE_LEN or nd == self._last_nonce:
            return sp.ERR_INTERNAL, sp.text_body("random source failed")
        self._last_nonce = nd
        self._nh = bytes(body)
        self._nd = nd
        return sp.OK, nd

    def _auth_finish(self, body):
        if len(body) != sp.PROOF_LEN:
            return _malformed("AUTH_FINISH takes a %d-byte proof" % sp.PROOF_LEN)
        if self.key is None:
            return sp.ERR_NOT_PROVISIONED, sp.text_body("no key: provision with retrostep flash")
        nh = self._nh
        nd = self._nd
        self._nh = None
        self._nd = None  # one try per device nonce: a replayed proof meets a new nonce
        if nd is None or nh is None:
            return sp.ERR_SEQUENCE, sp.text_body("AUTH_FINISH without AUTH_BEGIN")
        want = sp.host_proof(self.key, self.device_id, nh, nd)
        if not sp.equal(want, body):
            self.stats["auth_failed"] += 1
            return sp.ERR_AUTH_FAILED, sp.text_body("wrong proof")
        self.authenticated = True
        self.stats["auth_ok"] += 1
        return sp.OK, sp.device_proof(self.key, self.device_id, nh, nd)

    # sessions

    def _refresh(self):
        """Re-list the sessions (one directory walk) into the cache and the summary."""
        sessions = {}
        n = 0
        nbytes = 0
        active = self.store.active
        for sid, size, synced, complete in self.store.list_sessions():
            flags = (_SYNCED if synced else 0) | (_COMPLETE if complete else 0)
            if sid == active:
                flags |= _RECORDING
            sessions[sid] = (size, flags)
            if complete and not synced:
                n += 1
                nbytes += size if size > 0 else 0
        self._sessions = sessions
        free = None if self._summary is None else self._summary[2]
        self._summary = (n, nbytes, free)
        return sessions

    def _session(self, sid):
        """``(size, flags)`` of a session, or None. A complete session never changes, so
        its cached entry is used as is; anything else is listed afresh."""
        e = self._sessions.get(sid)
        if e is None or not e[1] & _COMPLETE:
            e = self._refresh().get(sid)
        return e

    def _list(self, body):
        if len(body) != 4:
            return _malformed("LIST takes a u32 first id")
        first = struct.unpack("<I", body)[0]
        sessions = self._refresh()
        ids = [sid for sid in sessions if sid >= first]
        ids.sort()
        more = len(ids) > sp.LIST_MAX
        entries = [(sid, sessions[sid][0], sessions[sid][1]) for sid in ids[: sp.LIST_MAX]]
        return sp.OK, sp.encode_list(entries, more)

    def _read(self, body):
        if len(body) != 10:
            return _malformed("READ takes u32 id, u32 offset, u16 length")
        sid, off, length = struct.unpack("<IIH", body)
        e = self._session(sid)
        if e is None:
            return sp.ERR_NO_SESSION, sp.text_body("no session %d" % sid)
        size = e[0]
        if off > size:
            return sp.ERR_RANGE, sp.text_body("offset %d past the end (%d)" % (off, size))
        n = size - off
        if n > length:
            n = length
        if n > sp.READ_MAX:
            n = sp.READ_MAX
        return sid, off, n

    def _digest(self, sid, size):
        """SHA-256 of the first ``size`` bytes of a session, or None if unreadable."""
        h = hashlib.sha256()
        off = 0
        while off < size:
            want = size - off
            data = self.store.read_session(sid, off, want if want < self.read_window
                                           else self.read_window)  # fmt: skip
            if not data:
                return None
            h.update(data)
            off += len(data)
        return h.digest()

    def _verify(self, body):
        if len(body) != 4:
            return _malformed("VERIFY takes a u32 id")
        sid = struct.unpack("<I", body)[0]
        e = self._session(sid)
        if e is None:
            return sp.ERR_NO_SESSION, sp.text_body("no session %d" % sid)
        size, flags = e
        digest = self._digest(sid, size)
        if digest is None:
            self._sessions.pop(sid, None)
            if self._session(sid) is None:
                return sp.ERR_NO_SESSION, sp.text_body("no session %d" % sid)
            return sp.ERR_STORAGE, sp.text_body("session %d unreadable" % sid)
        self._verified = (sid, digest) if flags & _COMPLETE else None
        return sp.OK, sp.encode_verify(sid, size, flags, digest)

    def _ack(self, body):
        if len(body) != 4 + sp.DIGEST_LEN:
            return _malformed("ACK takes a u32 id and a 32-byte digest")
        sid = struct.unpack_from("<I", body, 0)[0]
        digest = body[4:]
        v = self._verified
        if v is None or v[0] != sid:
            e = self._session(sid)
            if e is None:
                return sp.ERR_NO_SESSION, sp.text_body("no session %d" % sid)
            if not e[1] & _COMPLETE:
                return sp.ERR_INCOMPLETE, sp.text_body("session %d is not complete" % sid)
            return sp.ERR_SEQUENCE, sp.text_body("VERIFY session %d first" % sid)
        if not sp.equal(v[1], digest):
            return sp.ERR_DIGEST, sp.text_body("digest differs from VERIFY")
        if not self.store.mark_synced(sid):
            return sp.ERR_NO_SESSION, sp.text_body("no session %d" % sid)
        self.stats["acked"] += 1
        e = self._sessions.get(sid)
        if e is not None:
            self._sessions[sid] = (e[0], e[1] | _SYNCED)
        self._summary = None
        return sp.OK, b""

    # device settings

    def _set_time(self, body):
        if len(body) != 4:
            return _malformed("SET_TIME takes u32 seconds since 2000")
        s = struct.unpack("<I", body)[0]
        if s < sp.TIME_MIN:
            return sp.ERR_INVALID, sp.text_body("time before 2024: %d" % s)
        if self.set_clock is None:
            return sp.ERR_UNSUPPORTED, sp.text_body("this board has no clock to set")
        self.set_clock(s)
        self.clock_set = True
        return sp.OK, b""

    def _get_config(self, body):
        if body:
            return _malformed("GET_CONFIG takes no body")
        try:
            conf = self.load_config()
        except OSError as e:
            return sp.ERR_STORAGE, sp.text_body("config unreadable: %r" % (e,))
        return sp.OK, cfg.encode(conf)

    def _set_config(self, body):
        if not body:
            return _malformed("SET_CONFIG takes config bytes")
        conf, problems = cfg.decode(body)
        if problems:
            return sp.ERR_INVALID, sp.text_body("; ".join(problems))
        try:
            self.save_config(bytes(body))
        except OSError as e:
            return sp.ERR_STORAGE, sp.text_body("config not saved: %r" % (e,))
        self._name = None
        return sp.OK, b""

    def _buzz(self, body):
        if len(body) != 1:
            return _malformed("BUZZ takes a u8 count")
        if not 1 <= body[0] <= sp.BUZZ_MAX:
            return sp.ERR_INVALID, sp.text_body("count 1..%d" % sp.BUZZ_MAX)
        self.buzz(body[0])
        return sp.OK, b""

    # -- what the radio layer shows -----------------------------------------------------

    def summary(self, fresh=False):
        """``(unsynced complete sessions, their bytes, free log bytes or None)``, cached
        until an ACK or ``fresh`` (both the listing and statvfs are slow on LittleFS)."""
        if self._summary is None or fresh or self._summary[2] is None:
            self._refresh()
            try:
                free = self.store.free_bytes()
            except OSError:
                free = None
            s = self._summary
            self._summary = (s[0], s[1], free)  # type: ignore[index]
        return self._summary

    def status(self, full):
        """The status characteristic value; ``full``: with the step and alert counts
        (only for an authenticated central)."""
        live = self.live
        n, nbytes, free = self.summary()
        flags = sp.STATUS_COUNTS if full else 0
        if live.storage_full:
            flags |= sp.STATUS_STORAGE_FULL
        if n:
            flags |= sp.STATUS_UNSYNCED
        if self.clock_set:
            flags |= sp.STATUS_CLOCK_SET
        if live.config_problems:
            flags |= sp.STATUS_CONFIG_DEFAULTS
        if self.key is not None:
            flags |= sp.STATUS_PROVISIONED
        pct = sp.battery_percent(live.battery_mv)
        return sp.status_payload(live.state, flags, 255 if pct is None else pct, live.forward,
                                 live.backward, live.sway_alerts, n, nbytes, free,
                                 live.errors)  # fmt: skip

    def advertising(self):
        """``(advertising payload, scan response payload)`` for the current state."""
        n = self.summary()[0]
        flags = sp.ADV_UNSYNCED if n else 0
        if self.key is not None:
            flags |= sp.ADV_PROVISIONED
        if self.live.storage_full:
            flags |= sp.ADV_STORAGE_FULL
        if self.live.session_id is not None:
            flags |= sp.ADV_RECORDING
        return sp.advertising_payload(flags, n), sp.scan_response_payload(self.name())

    def name(self):
        """The device name: the config's, or ``default_name`` while the config has the
        default one. Read once, and again after a SET_CONFIG."""
        if self._name is None:
            try:
                name = self.load_config()["device_name"]
            except (OSError, KeyError, TypeError):
                name = ""
            if self.default_name and (not name or name == cfg.defaults()["device_name"]):
                name = self.default_name
            self._name = name or "retrostep"
        return self._name


def _malformed(text):
    return sp.ERR_MALFORMED, sp.text_body(text)
