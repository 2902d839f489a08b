"""The sync protocol codec: HMAC, message framing and fragments, bodies, the status
value and advertising. Portable: runs under CPython and inside the MicroPython unix port."""

from retrostep_core import sync_protocol as sp


def _prng(seed):
    state = [seed]

    def nxt(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n

    return nxt


def _hex(b):
    return "".join("%02x" % c for c in b)


# -- HMAC-SHA256: RFC 4231 test cases ---------------------------------------------------

RFC4231 = (
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size "
     b"data. The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
)  # fmt: skip


def test_hmac_sha256_rfc4231_vectors():
    for key, msg, want in RFC4231:
        assert _hex(sp.hmac_sha256(key, msg)) == want, (key[:4], msg[:10])
    # RFC 4231 case 5 checks a truncated output: its first 16 bytes
    out = sp.hmac_sha256(b"\x0c" * 20, b"Test With Truncation")
    assert _hex(out[:16]) == "a3b6167473100ee06e0c796c2955552b"


def test_equal_compares_whole_strings():
    assert sp.equal(b"abc", b"abc")
    assert not sp.equal(b"abc", b"abd")
    assert not sp.equal(b"abc", b"ab")
    assert sp.equal(b"", b"")
    assert not sp.equal(bytes(32), b"\x00" * 31 + b"\x01")


def test_proofs_are_bound_to_role_nonces_and_device():
    key = bytes(range(32))
    nh = b"H" * 16
    nd = b"D" * 16
    hp = sp.host_proof(key, b"dev1", nh, nd)
    dp = sp.device_proof(key, b"dev1", nh, nd)
    assert len(hp) == len(dp) == 32 and hp != dp  # one cannot stand in for the other
    assert sp.host_proof(key, b"dev1", nh, b"E" * 16) != hp
    assert sp.host_proof(key, b"dev1", b"I" * 16, nd) != hp
    assert sp.host_proof(key, b"dev2", nh, nd) != hp
    assert sp.host_proof(bytes(32), b"dev1", nh, nd) != hp
    # the exact input: label, id length, id, host nonce, device nonce
    msg = sp.HOST_LABEL + b"\x04dev1" + nh + nd
    assert hp == sp.hmac_sha256(key, msg)


# -- framing ----------------------------------------------------------------------------


def test_golden_request_and_response_bytes():
    # READ(session 3, offset 256, length 4096), request id 7
    body = bytes.fromhex("03000000" "00010000" "0010")  # fmt: skip
    msg = sp.request(sp.OP_READ, 7, body)
    assert msg == bytes.fromhex("0c00" "11" "07") + body  # fmt: skip
    assert sp.parse_request(msg) == (sp.OP_READ, 7, body)
    # at MTU 23 a fragment holds 19 message bytes: it fits one START fragment
    assert sp.fragments(msg, 23, 5) == [bytes.fromhex("85") + msg]
    # an error response: n = 3 + 2, op, id, status, body "no"
    resp = sp.response(sp.OP_READ, 7, sp.ERR_NO_SESSION, b"no")
    assert resp == bytes.fromhex("0500" "11" "07" "09") + b"no"  # fmt: skip
    assert sp.parse_response(resp) == (sp.OP_READ, 7, sp.ERR_NO_SESSION, b"no")
    assert sp.parse_response(resp[:-1]) is None
    assert sp.parse_request(msg + b"x") is None
    assert sp.parse_request(b"\x00") is None


def test_fragments_fit_the_mtu_and_reassemble():
    rnd = _prng(3)
    for mtu in (23, 24, 27, 100, 185, 247, 517):
        room = mtu - 4
        for n in (0, 1, 14, 15, 16, room - 5, room - 4, room, room + 1, 3 * room, 700):
            if n < 0:
                continue
            body = bytes(rnd(256) for _ in range(n))
            msg = sp.response(sp.OP_READ, n & 255, sp.OK, body)
            seq = rnd(128)
            frags = sp.fragments(msg, mtu, seq)
            assert len(frags) == (len(msg) + room - 1) // room
            rx = sp.Reassembler(sp.RESPONSE_MAX, sp.RESPONSE_HEADER)
            for i, f in enumerate(frags):
                assert 2 <= len(f) <= mtu - 3
                assert f[0] == (seq + i) & 127 | (0x80 if i == 0 else 0)
                res = rx.feed(f)
                assert res == (sp.DONE if i == len(frags) - 1 else sp.MORE)
                assert not rx.lost
            assert rx.message() == msg
            assert rx.op == sp.OP_READ and rx.rid == n & 255


def test_reassembler_reports_broken_messages():
    msg = sp.request(sp.OP_SET_CONFIG, 9, bytes(range(60)))
    frags = sp.fragments(msg, 23, 126)  # the seq wraps inside the message
    assert len(frags) == 4 and frags[2][0] == 0
    rx = sp.Reassembler(sp.REQUEST_MAX, sp.REQUEST_HEADER)
    # a lost middle fragment: GAP naming the message, the rest of it is skipped
    assert rx.feed(frags[0]) == sp.MORE
    assert rx.feed(frags[2]) == sp.GAP and (rx.op, rx.rid) == (sp.OP_SET_CONFIG, 9)
    assert rx.feed(frags[3]) == sp.SKIPPED
    assert rx.feed(frags[1]) == sp.SKIPPED  # still the broken message, as far as it knows
    # a stray continuation with nothing in progress
    fresh = sp.Reassembler(sp.REQUEST_MAX, sp.REQUEST_HEADER)
    assert fresh.feed(frags[1]) == sp.GAP and (fresh.op, fresh.rid) == (0, 0)
    assert fresh.feed(frags[2]) == sp.GAP  # each stray one is reported
    # a START while a message is incomplete: the old one is reported lost
    other = sp.request(sp.OP_INFO, 10)
    assert rx.feed(frags[0]) == sp.MORE
    assert rx.feed(sp.fragments(other, 23, 0)[0]) == sp.DONE
    assert rx.lost and (rx.lost_op, rx.lost_rid) == (sp.OP_SET_CONFIG, 9)
    assert rx.message() == other
    # too long, too short, more bytes than declared, empty
    big = sp.request(sp.OP_SET_CONFIG, 11, bytes(sp.REQUEST_MAX))
    assert rx.feed(sp.fragments(big, 247, 0)[0]) == sp.TOO_LONG
    assert (rx.op, rx.rid) == (sp.OP_SET_CONFIG, 11)
    assert rx.feed(bytes((0x80, 2, 0))) == sp.BAD
    assert rx.feed(bytes((0x80, 1, 0, 1, 1))) == sp.BAD  # n = 1 < op + id
    assert rx.feed(bytes((0x80, 2, 0, 1, 1, 99))) == sp.BAD  # a byte past n
    assert rx.feed(b"") == sp.BAD
    # after all that, a good message still goes through
    for i, f in enumerate(frags):
        assert rx.feed(f) == (sp.DONE if i == 3 else sp.MORE)
    assert rx.message() == msg


# -- bodies -----------------------------------------------------------------------------


def test_info_list_verify_round_trips():
    body = sp.encode_info(sp.INFO_PROVISIONED | sp.INFO_CLOCK_SET, b"\x01\x02\x03\x04\x05\x06",
                          "retrostep 0.1.0", "XIAO ESP32-S3", "Anna's clip")  # fmt: skip
    assert body[:6] == bytes.fromhex("01" "05" "a000" "0080")  # fmt: skip
    info = sp.decode_info(body)
    assert info["version"] == 1 and info["provisioned"] and info["clock_set"]
    assert not info["authenticated"]
    assert info["device_id"] == b"\x01\x02\x03\x04\x05\x06"
    assert info["firmware"] == "retrostep 0.1.0" and info["name"] == "Anna's clip"
    assert info["request_max"] == sp.REQUEST_MAX and info["read_max"] == sp.READ_MAX
    assert sp.decode_info(body[:-1]) is None and sp.decode_info(b"") is None
    entries = [(1, 50256, 3), (2, 100, 0), (70000, 0xFFFFFFFF, 4)]
    lb = sp.encode_list(entries, True)
    assert len(lb) == 2 + 9 * 3
    assert lb[:11] == bytes.fromhex("03" "01" "01000000" "50c40000" "03")  # fmt: skip
    assert sp.decode_list(lb) == ([tuple(e) for e in entries], True)
    assert sp.decode_list(lb[:-1]) is None
    vb = sp.encode_verify(5, 1234, 2, bytes(range(32)))
    assert sp.decode_verify(vb) == (5, 1234, 2, bytes(range(32)))
    assert sp.decode_verify(vb + b"x") is None


def test_text_bodies_are_printable_and_bounded():
    b = sp.text_body("bad\x00value " + "x" * 200)
    assert len(b) == sp.MESSAGE_TEXT_MAX
    assert b.startswith(b"bad?value ")
    assert sp.body_text(b"a\xffb") == "a?b"


# -- status value -----------------------------------------------------------------------


def test_golden_status_value():
    flags = sp.STATUS_COUNTS | sp.STATUS_UNSYNCED | sp.STATUS_PROVISIONED
    v = sp.status_payload("session", flags, 80, 1234, 567, 3, 2, 50256, 1500000, 0)
    assert len(v) == sp.STATUS_SIZE == 20
    want = bytes.fromhex(
        "01" "01" "25" "50" "d2040000" "37020000" "0300" "02" "3200" "b805" "00"
    )  # fmt: skip
    assert v == want, _hex(v)
    s = sp.parse_status(v)
    assert s["state"] == "session" and s["counts"] and s["unsynced_data"] and s["provisioned"]
    assert (s["forward"], s["backward"], s["sway_alerts"]) == (1234, 567, 3)
    assert (s["unsynced_sessions"], s["unsynced_kib"], s["free_kib"]) == (2, 50, 1464)
    assert s["battery_pct"] == 80 and not s["storage_full"]


def test_public_status_hides_the_counts_and_saturates():
    v = sp.status_payload("idle", 0, 255, 1234, 567, 3, 300, 10**9, None, 999)
    s = sp.parse_status(v)
    assert (s["forward"], s["backward"], s["sway_alerts"]) == (0, 0, 0) and not s["counts"]
    assert s["battery_pct"] is None and s["free_kib"] is None
    assert s["unsynced_sessions"] == 255 and s["unsynced_kib"] == 65535 and s["errors"] == 255
    assert sp.parse_status(sp.status_payload("odd", 0, 0, 0, 0, 0, 0, 0, 0, 0))["state"] == \
        "unknown"  # fmt: skip
    assert sp.parse_status(v[:19]) is None


def test_battery_percent_curve():
    assert sp.battery_percent(0) is None
    assert sp.battery_percent(3000) == 0 and sp.battery_percent(4300) == 100
    assert sp.battery_percent(3650) == 20 and sp.battery_percent(4200) == 100
    last = 0
    for mv in range(3200, 4300, 7):
        p = sp.battery_percent(mv)
        assert last <= p <= 100
        last = p


# -- advertising ------------------------------------------------------------------------


def test_uuid_bytes_are_least_significant_first():
    b = sp.uuid_bytes(sp.SERVICE_UUID)
    assert _hex(b) == "c6b04714d4f1dc9a2940b56901007bcf"
    assert sp.uuid_str(b) == sp.SERVICE_UUID
    for u in (sp.CONTROL_UUID, sp.DATA_UUID, sp.STATUS_UUID):
        assert sp.uuid_str(sp.uuid_bytes(u)) == u
    assert len(set([sp.SERVICE_UUID, sp.CONTROL_UUID, sp.DATA_UUID, sp.STATUS_UUID])) == 4


def test_advertising_fits_and_parses():
    adv = sp.advertising_payload(sp.ADV_UNSYNCED | sp.ADV_PROVISIONED, 3)
    assert len(adv) == 29 <= sp.AD_MAX
    assert adv[:3] == bytes.fromhex("020106")
    assert adv[-8:] == bytes.fromhex("07ff" "ffff" "72" "01" "03" "03")  # fmt: skip
    scan = sp.scan_response_payload("retrostep")
    assert scan == bytes.fromhex("0a09") + b"retrostep"
    p = sp.parse_advertising(adv + scan)
    assert p["flags"] == 6 and p["name"] == "retrostep"
    assert p["uuids"] == [sp.SERVICE_UUID]
    rs = p["retrostep"]
    assert rs["unsynced_data"] and rs["provisioned"] and not rs["recording"]
    assert rs["unsynced_sessions"] == 3 and rs["version"] == sp.PROTOCOL_VERSION
    # the longest configurable name (16) fits; a longer one is shortened, marked short
    assert len(sp.scan_response_payload("x" * 16)) == 18
    long = sp.scan_response_payload("y" * 40)
    assert len(long) == 31 and long[1] == sp.AD_NAME_SHORT
    # someone else's manufacturer data, and garbage, do not confuse the parser
    other = bytes.fromhex("05ff" "ffff" "0102")  # fmt: skip
    assert sp.parse_advertising(other)["retrostep"] is None
    assert sp.parse_advertising(b"\x05\x09ab")["name"] is None
    assert sp.parse_manufacturer(b"\x72\x01") is None
