import gc
import sys
from array import array
from binascii import crc32 as ref_crc32

from retrostep_core import records as r


def _frames(encoder_calls):
    """Copy each emitted frame. Views are valid only until the encoder's next call, so
    pass a generator (or one call at a time), never a list of several calls."""
    return [bytes(v) for v in encoder_calls if v is not None]


def _prng(seed):
    state = [seed]

    def nxt(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n

    return nxt


def _raises(fn, exc=ValueError):
    try:
        fn()
    except exc:
        return True
    return False


# -- CRC and golden bytes ------------------------------------------------------------


def test_crc32_matches_binascii():
    b = bytearray(b"123456789\0\0\0\0")
    r.crc32_into(b, 0, 9, 9)
    assert bytes(b[9:]) == bytes.fromhex("2639f4cb")  # 0xCBF43926, the CRC-32 check value
    rnd = _prng(7)
    for n in (0, 1, 2, 3, 15, 16, 17, 100, 263):
        data = bytes(rnd(256) for _ in range(n))
        buf = bytearray(data + bytes(4))
        r.crc32_into(buf, 0, n, n)
        assert int.from_bytes(bytes(buf[n:]), "little") == ref_crc32(data), n
        assert r.crc32(data) == ref_crc32(data) & 0xFFFFFFFF


def test_golden_sway_alert():
    # SYNC a5 5a | type 05 | len 07 | t=1000 e8030000 | side -1 ff | roll 123 7b00 | CRC
    body = bytes.fromhex("0507" "e8030000" "ff" "7b00")  # fmt: skip
    crc = bytes.fromhex("f656d362")
    assert ref_crc32(body).to_bytes(4, "little") == crc
    want = bytes.fromhex("a55a") + body + crc
    assert bytes(r.Encoder().sway_alert(1000, -1, 123)) == want
    assert r.decode(want) == [(r.SWAY_ALERT, {"t": 1000, "side": -1, "roll": 123})]


def test_golden_steps_batch():
    # Steps at 5000 (fwd), 5600 (bwd), 6250 (fwd): t0 = 5000 = 88130000, then per step
    # u16 = bit15 backward | ms since previous: 0000, 0x8000|600 = 5882, 650 = 8a02.
    body = bytes.fromhex("030a" "88130000" "0000" "5882" "8a02")  # fmt: skip
    crc = bytes.fromhex("1482114d")
    assert ref_crc32(body).to_bytes(4, "little") == crc
    want = bytes.fromhex("a55a") + body + crc
    e = r.Encoder()
    assert e.add_step(5000, 1) is None
    assert e.add_step(5600, -1) is None
    assert e.add_step(6250, 1) is None
    assert bytes(e.flush_steps()) == want
    assert e.flush_steps() is None
    assert r.decode(want) == [(r.STEPS, {"t": 5000, "steps": [(5000, 1), (5600, -1), (6250, 1)]})]


def test_golden_seconds_batch():
    # t0 = 60000 = 60ea0000; second 1: 1 fwd -> 01, cadence 1000 e803, range 45 2d00,
    # rms 120 7800, flags walking + forward interval (1 << 1 | 1) = 03; second 2: 2 bwd
    # -> 20, cadence 1050 1a04, range 60 3c00, rms 200 c800, walking + backward = 05.
    body = bytes.fromhex(
        "0414" "60ea0000" "01" "e803" "2d00" "7800" "03" "20" "1a04" "3c00" "c800" "05"
    )  # fmt: skip
    crc = bytes.fromhex("ef7150bc")
    assert ref_crc32(body).to_bytes(4, "little") == crc
    want = bytes.fromhex("a55a") + body + crc
    e = r.Encoder()
    assert e.add_second(60000, 1, 0, 1000, 45, 120, True, r.KIND_FORWARD) is None
    assert e.add_second(61000, 0, 2, 1050, 60, 200, True, r.KIND_BACKWARD) is None
    assert bytes(e.flush_seconds()) == want


# -- round trips ---------------------------------------------------------------------


def _one_of_each():
    e = r.Encoder()
    out = [bytes(e.header(0xDEADBEEF, 812345678, 52000, 1050, 3, 1, 0x12345678, "0.1.0"))]
    out.append(bytes(e.step(1234, -1, 870)))
    for k in range(5):
        e.add_step(2000 + 550 * k, 1 if k < 3 else -1)
    out.append(bytes(e.flush_steps()))
    for k in range(3):
        e.add_second(3000 + 1000 * k, k, 3 - k, 950 + k, 40 + k, 100 + k, k != 1, k)
    out.append(bytes(e.flush_seconds()))
    out.append(bytes(e.sway_alert(4500, 1, -157)))
    out.append(bytes(e.interval(5000, r.KIND_REST, 2, 1)))
    out.append(bytes(e.note(6000, r.NOTE_EVENTS_DROPPED, -5)))
    out.append(bytes(e.end(7000, 123456, 7890, 12, 3000, 600, r.END_BUTTON)))
    return out


def test_round_trip_every_record_type():
    got = r.decode(b"".join(_one_of_each()))
    assert [k for k, _ in got] == [
        r.HEADER,
        r.STEP,
        r.STEPS,
        r.SECONDS,
        r.SWAY_ALERT,
        r.INTERVAL,
        r.NOTE,
        r.END,
    ]
    f = [fields for _, fields in got]
    assert f[0] == {
        "version": r.LOG_VERSION,
        "session_id": 0xDEADBEEF,
        "wall_start": 812345678,
        "fs_mhz": 52000,
        "sway_limit_cdeg": 1050,
        "mounting": 3,
        "config_version": 1,
        "config_crc": 0x12345678,
        "firmware": "0.1.0",
    }
    assert f[1] == {"t": 1234, "direction": -1, "confidence": 870}
    assert f[2]["steps"] == [(2000, 1), (2550, 1), (3100, 1), (3650, -1), (4200, -1)]
    assert f[3]["t"] == 3000
    assert f[3]["seconds"][1] == {
        "t": 4000,
        "forward": 1,
        "backward": 2,
        "cadence": 951,
        "roll_range": 41,
        "roll_rate_rms": 101,
        "walking": False,
        "interval": 1,
    }
    assert [s["interval"] for s in f[3]["seconds"]] == [0, 1, 2]
    assert f[4] == {"t": 4500, "side": 1, "roll": -157}
    assert f[5] == {"t": 5000, "kind": r.KIND_REST, "index": 2, "repeat": 1}
    assert f[6] == {"t": 6000, "code": r.NOTE_EVENTS_DROPPED, "value": -5}
    assert f[7] == {
        "t": 7000,
        "forward": 123456,
        "backward": 7890,
        "alerts": 12,
        "walking_s": 3000,
        "compliance_s": 600,
        "reason": r.END_BUTTON,
    }
    rep = r.decode_report(b"".join(_one_of_each()))
    assert rep["version"] == r.LOG_VERSION and rep["ended_cleanly"]
    assert rep["skipped_bytes"] == rep["torn_bytes"] == rep["skipped_records"] == 0


def test_steps_batch_closes_when_full_on_a_long_pause_and_on_time_going_back():
    e = r.Encoder(steps_batch=4)
    frames = _frames(e.add_step(1000 * k, 1) for k in range(9))  # 0..8 s
    assert len(frames) == 2  # two full batches; step 8 pending
    frames += _frames([e.add_step(8000 + 40000, -1)])  # 40 s pause: > 32.767 s
    frames += _frames([e.add_step(47000, 1)])  # earlier than the previous step
    frames += _frames([e.flush_steps()])
    got = r.steps_of(r.decode(b"".join(frames)))
    assert got == [(1000 * k, 1) for k in range(9)] + [(47000, 1), (48000, -1)]
    assert len(frames) == 5
    # the longest delta a batch holds
    e = r.Encoder()
    assert e.add_step(10, 1) is None and e.add_step(10 + 0x7FFF, -1) is None
    frames = _frames([e.flush_steps()])
    assert r.steps_of(r.decode(frames[0])) == [(10, 1), (10 + 0x7FFF, -1)]


def test_seconds_batch_needs_consecutive_seconds_and_saturates_counts():
    e = r.Encoder(seconds_batch=3)
    frames = _frames([e.add_second(0, 1, 0, 0, 0, 0, False, 0)])
    frames += _frames([e.add_second(1000, 20, -3, 70000, -1, 5, True, 3)])
    frames += _frames([e.add_second(5000, 0, 0, 0, 0, 0, True, 0)])  # gap: closes batch 1
    frames += _frames([e.flush_seconds()])
    assert len(frames) == 2
    secs = r.seconds_of(r.decode(b"".join(frames)))
    assert [s["t"] for s in secs] == [0, 1000, 5000]
    s = secs[1]
    assert (s["forward"], s["backward"], s["cadence"], s["roll_range"]) == (15, 0, 65535, 0)
    assert s["walking"] and s["interval"] == r.KIND_REST


def test_encoder_rejects_bad_arguments():
    assert _raises(lambda: r.Encoder(steps_batch=1))
    assert _raises(lambda: r.Encoder(seconds_batch=32))
    e = r.Encoder()
    assert _raises(lambda: e.header(1, 0, 52000, 1000, 0, 1, 0, "x" * 33))


# -- damage --------------------------------------------------------------------------


def _fifty_records():
    """50 frames of mixed types: a header, 48 from a walk, an end."""
    e = r.Encoder(steps_batch=8, seconds_batch=4)
    out = [bytes(e.header(42, 0, 52000, 1000, 0, 1, 99, "0.1.0"))]
    t = 0
    while len(out) < 49:
        t += 600
        v = e.add_step(t, 1 if (t // 10000) % 2 else -1)
        if v is not None:
            out.append(bytes(v))
        if t % 1000 == 0:
            v = e.add_second(t, 1, 1, 1000, 30, 80, True, 1)
            if v is not None:
                out.append(bytes(v))
        if t % 7800 == 0:
            out.append(bytes(e.sway_alert(t, -1, 120)))
        if t % 9000 == 0:
            out.append(bytes(e.interval(t, r.KIND_BACKWARD, 1, 0)))
    out = out[:49]
    out.append(bytes(e.end(t, 10, 10, 3, 40, 20, r.END_IDLE)))
    return out


def test_a_flipped_byte_loses_exactly_that_record():
    frames = _fifty_records()
    assert len(frames) == 50 and len(set(f[2] for f in frames)) >= 6
    log = b"".join(frames)
    good = r.decode(log)
    assert len(good) == 50
    start = sum(len(f) for f in frames[:25])
    for off in range(len(frames[25])):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(log)
            bad[start + off] ^= mask
            rep = r.decode_report(bad)
            assert rep["records"] == good[:25] + good[26:], (off, mask)
            assert rep["skipped_bytes"] == len(frames[25]) and rep["bad_spans"] == 1
            assert rep["torn_bytes"] == 0 and rep["ended_cleanly"]


def test_garbage_between_records_is_skipped_and_counted():
    frames = _fifty_records()
    junk = b"\xa5\x5a\x03\x02\x00" + bytes(range(200, 256)) + b"\xa5"
    log = b"".join(frames[:10]) + junk + b"".join(frames[10:])
    rep = r.decode_report(log)
    assert rep["records"] == r.decode(b"".join(frames))
    assert rep["skipped_bytes"] == len(junk) and rep["bad_spans"] == 1


def test_a_torn_last_record_is_reported_and_the_rest_kept():
    frames = _fifty_records()[:-1]  # no END: the power went while writing an alert
    frames.append(bytes(r.Encoder().sway_alert(99000, 1, 111)))
    log = b"".join(frames)
    whole = r.decode(log)
    for cut in range(1, len(frames[-1])):
        rep = r.decode_report(log[: len(log) - cut])
        assert rep["records"] == whole[:-1], cut
        assert rep["torn_bytes"] == len(frames[-1]) - cut
        assert rep["skipped_bytes"] == 0 and not rep["ended_cleanly"]


def test_unknown_type_is_skipped_and_counted():
    frames = _one_of_each()
    body = bytes([200, 3, 1, 2, 3])
    alien = b"\xa5\x5a" + body + ref_crc32(body).to_bytes(4, "little")
    rep = r.decode_report(b"".join(frames[:4]) + alien + b"".join(frames[4:]))
    assert rep["records"] == r.decode(b"".join(frames))
    assert rep["skipped_records"] == 1 and rep["skipped_bytes"] == 0
    assert rep["ended_cleanly"]


def test_appended_fields_are_ignored_and_short_payloads_skipped():
    def frame(kind, payload):
        body = bytes([kind, len(payload)]) + payload
        return b"\xa5\x5a" + body + ref_crc32(body).to_bytes(4, "little")

    longer = frame(r.SWAY_ALERT, bytes.fromhex("e8030000" "01" "6400" "beef"))  # fmt: skip
    shorter = frame(r.NOTE, bytes.fromhex("e8030000" "0100"))  # fmt: skip
    rep = r.decode_report(longer + shorter)
    assert rep["records"] == [(r.SWAY_ALERT, {"t": 1000, "side": 1, "roll": 100})]
    assert rep["skipped_records"] == 1


def test_a_session_of_another_version_is_not_guessed_at():
    frames = _one_of_each()
    h = bytearray(frames[0])
    h[4] = r.LOG_VERSION + 1
    h[-4:] = ref_crc32(bytes(h[2:-4])).to_bytes(4, "little")
    rep = r.decode_report(bytes(h) + b"".join(frames[1:]) + b"".join(frames))
    assert rep["version"] == r.LOG_VERSION + 1
    assert rep["records"][0] == (r.HEADER, {"version": r.LOG_VERSION + 1})
    assert rep["records"][1:] == r.decode(b"".join(frames))  # the next session reads
    assert rep["skipped_records"] == len(frames) - 1


def test_decoding_noise_never_raises():
    rnd = _prng(3)
    for n in (0, 1, 7, 8, 9, 300, 3000):
        data = bytes(rnd(256) for _ in range(n))
        rep = r.decode_report(data)
        assert rep["records"] == [] and rep["torn_bytes"] + rep["skipped_bytes"] == n
    rep = r.decode_report(b"\xa5\x5a" * 500 + b"\xa5")
    assert rep["records"] == [] and rep["torn_bytes"] == 1001
    assert r.decode_report(bytearray(8))["torn_bytes"] == 8


# -- size ----------------------------------------------------------------------------


def synthetic_hour():
    """One hour of walking as the firmware would log it; returns the log bytes.

    100 steps/min, a 5 min forward / 1 min backward program (20 interval changes), a
    summary every second, 30 sway alerts; steps are flushed with every SECONDS frame so
    a power cut loses at most 10 s.
    """
    e = r.Encoder()
    out = [bytes(e.header(1, 0, 52000, 1000, 0, 1, 0x89ABCDEF, "0.1.0"))]
    t_step = 300
    for s in range(3600):
        kind = r.KIND_BACKWARD if s % 360 >= 300 else r.KIND_FORWARD
        if s % 360 in (0, 300):
            out.append(bytes(e.interval(1000 * s, kind, 0 if s % 360 == 0 else 1, s // 360)))
        fwd = bwd = 0
        while t_step < 1000 * (s + 1):
            v = e.add_step(t_step, -1 if kind == r.KIND_BACKWARD else 1)
            if v is not None:
                out.append(bytes(v))
            if kind == r.KIND_BACKWARD:
                bwd += 1
            else:
                fwd += 1
            t_step += 600
        if s % 120 == 60:
            out.append(bytes(e.sway_alert(1000 * s + 400, 1, 112)))
        v = e.add_second(1000 * s, fwd, bwd, 1000, 55, 140, True, kind)
        if v is not None:
            out.append(bytes(v))
            v = e.flush_steps()
            if v is not None:
                out.append(bytes(v))
    out.append(bytes(e.end(3600000, 5000, 1000, 30, 3600, 600, r.END_BUTTON)))
    return b"".join(out)


def test_an_hour_of_walking_fits_the_budget():
    log = synthetic_hour()
    # docs/log-format.md: header 35 + 360 SECONDS x 92 + 360 STEPS (12 + 2k) summing to
    # 360 x 12 + 2 x 6000 + 30 alerts x 15 + 20 intervals x 15 + END 31
    assert len(log) == 35 + 360 * 92 + 360 * 12 + 2 * 6000 + 30 * 15 + 20 * 15 + 31
    assert len(log) == 50256 < 60000
    rep = r.decode_report(log)
    assert rep["ended_cleanly"] and rep["skipped_bytes"] == rep["torn_bytes"] == 0
    steps = r.steps_of(rep["records"])
    assert len(steps) == 6000 and sum(1 for _, d in steps if d < 0) == 1000
    secs = r.seconds_of(rep["records"])
    assert len(secs) == 3600 and sum(s["forward"] + s["backward"] for s in secs) == 6000


# -- WINDOW: the firmware's 2 s record ------------------------------------------------


def test_golden_window():
    # Seconds at 10000 (1 fwd + 1 bwd, 104 steps/min, roll range 4.8 deg, RMS roll rate
    # 13.0 deg/s -> 26 x 0.5) and 11000 (2 fwd, 110 steps/min, range and rate beyond
    # a byte: saturated); steps at 14000 (fwd: 4000 ms after t = a00f) and 14550 (bwd:
    # 0x8000 | 550 = 2682). Payload 5 + 2 x 4 + 2 x 2 = 17 = 0x11.
    body = bytes.fromhex("0911" "10270000" "02" "11" "68" "30" "1a" "02" "6e" "ff" "ff"
                         "a00f" "2682")  # fmt: skip
    want = bytes.fromhex("a55a") + body + ref_crc32(body).to_bytes(4, "little")
    e = r.Encoder()
    assert e.window_second(10000, 1, 1, 104, 48, 130) is None
    assert e.window_second(11000, 2, 0, 110, 300, 1300) is None
    assert e.window_step(14000, 1) is None
    assert e.window_step(14550, -1) is None
    assert bytes(e.flush_window()) == want
    assert e.flush_window() is None
    (kind, f), = r.decode(want)
    assert kind == r.WINDOW and f["t"] == 10000
    assert f["steps"] == [(14000, 1), (14550, -1)]
    assert [(x["t"], x["forward"], x["backward"], x["cadence"], x["roll_range"],
             x["roll_rate_rms"], x["walking"]) for x in f["seconds"]] == [
        (10000, 1, 1, 1040, 48, 130, True), (11000, 2, 0, 1100, 255, 1275, True)]  # fmt: skip
    assert r.steps_of(r.decode(want)) == f["steps"]
    assert r.seconds_of(r.decode(want)) == f["seconds"]


def test_window_with_steps_only_and_with_seconds_only():
    e = r.Encoder()
    assert e.window_step(7300, -1) is None
    assert e.window_step(7900, 1) is None
    (k, f), = r.decode(bytes(e.flush_window()))
    assert f["t"] == 7300 and f["seconds"] == [] and f["steps"] == [(7300, -1), (7900, 1)]
    assert e.window_second(3000, 0, 0, 0, 12, 20) is None
    (k, f), = r.decode(bytes(e.flush_window()))
    assert f["steps"] == [] and len(f["seconds"]) == 1
    assert f["seconds"][0]["walking"] is False and f["seconds"][0]["cadence"] == 0
    # steps first, then a second that starts before them: one record, from the second
    assert e.window_step(9100, 1) is None
    assert e.window_second(8000, 1, 0, 100, 10, 10) is None
    (k, f), = r.decode(bytes(e.flush_window()))
    assert f["t"] == 8000 and f["steps"] == [(9100, 1)] and len(f["seconds"]) == 1


def test_window_closes_early_when_an_item_cannot_join():
    e = r.Encoder()
    got = _frames([e.window_second(20000, 1, 0, 100, 10, 10)])
    got += _frames([e.window_second(25000, 1, 0, 100, 10, 10)])  # not consecutive
    assert len(got) == 1
    got += _frames([e.window_step(24000, 1)])  # before the pending second's start
    assert len(got) == 2
    got += _frames([e.window_step(24000 + 40000, 1)])  # a pause beyond 32.767 s
    got += _frames([e.flush_window()])
    recs = r.decode(b"".join(got))
    assert [f["t"] for _, f in recs] == [20000, 25000, 24000, 64000]
    assert r.steps_of(recs) == [(24000, 1), (64000, 1)]
    assert [x["t"] for x in r.seconds_of(recs)] == [20000, 25000]
    # full records: 15 seconds, 40 steps
    out = _frames(e.window_second(1000 * i, 1, 0, 90, 5, 5) for i in range(16))
    assert len(out) == 1 and len(r.decode(out[0])[0][1]["seconds"]) == 15
    e.flush_window()
    out = _frames(e.window_step(500 * i, 1) for i in range(41))
    assert len(out) == 1 and len(r.decode(out[0])[0][1]["steps"]) == 40


def synthetic_hour_windows():
    """An hour of walking as the firmware writes it: the synthetic_hour walk, with a
    WINDOW every 2 s holding the steps since the last one and the seconds that became
    final (5 s after they end), so a power cut loses at most about 2 s."""
    e = r.Encoder()
    out = [bytes(e.header(1, 0, 52000, 1000, 0, 1, 0x89ABCDEF, "0.1.0"))]
    t_step = 300
    per_second = []
    for s in range(3600):
        kind = r.KIND_BACKWARD if s % 360 >= 300 else r.KIND_FORWARD
        if s % 360 in (0, 300):
            out.append(bytes(e.interval(1000 * s, kind, 0 if s % 360 == 0 else 1, s // 360)))
        fwd = bwd = 0
        while t_step < 1000 * (s + 1):
            out.extend(_frames([e.window_step(t_step, -1 if kind == r.KIND_BACKWARD else 1)]))
            if kind == r.KIND_BACKWARD:
                bwd += 1
            else:
                fwd += 1
            t_step += 600
        per_second.append((fwd, bwd))
        if s % 120 == 60:
            out.append(bytes(e.sway_alert(1000 * s + 400, 1, 112)))
        if s >= 6:  # second s - 6 ended 5 s ago: final
            f, b = per_second[s - 6]
            out.extend(_frames([e.window_second(1000 * (s - 6), f, b, 100, 55, 140)]))
        if s % 2 == 1:
            out.extend(_frames([e.flush_window()]))
    for k in range(3594, 3600):
        f, b = per_second[k]
        out.extend(_frames([e.window_second(1000 * k, f, b, 100, 55, 140)]))
    out.extend(_frames([e.flush_window()]))
    out.append(bytes(e.end(3600000, 5000, 1000, 30, 3600, 600, r.END_BUTTON)))
    return b"".join(out)


def test_an_hour_of_walking_in_windows_fits_the_budget():
    log = synthetic_hour_windows()
    # 1800 WINDOWs of 13 bytes + 4 per second + 2 per step (the last one holds the 6
    # final seconds), plus header, alerts, intervals and END as in synthetic_hour
    assert len(log) == 35 + 1801 * 13 + 3600 * 4 + 6000 * 2 + 30 * 15 + 20 * 15 + 31
    assert len(log) < 60000
    rep = r.decode_report(log)
    assert rep["ended_cleanly"] and rep["skipped_bytes"] == rep["torn_bytes"] == 0
    steps = r.steps_of(rep["records"])
    assert len(steps) == 6000 and sum(1 for _, d in steps if d < 0) == 1000
    secs = r.seconds_of(rep["records"])
    assert [x["t"] for x in secs] == [1000 * k for k in range(3600)]
    assert sum(x["forward"] + x["backward"] for x in secs) == 6000


# -- allocation (MicroPython) --------------------------------------------------------


def _walk(e, seconds, t0, stats):
    """Encode ``seconds`` of walking: 2 steps/s, a summary per second, an alert per
    100 s. Adds bytes and frames emitted to ``stats`` (returning a tuple would
    allocate)."""
    for s in range(t0, t0 + seconds):
        t = 1000 * s
        v = e.add_step(t + 100, 1)
        if v is not None:
            stats[0] += len(v)
            stats[1] += 1
        v = e.add_step(t + 600, -1)
        if v is not None:
            stats[0] += len(v)
            stats[1] += 1
        if s % 100 == 0:
            v = e.sway_alert(t + 300, -1, 150)
            stats[0] += len(v)
            stats[1] += 1
        v = e.add_second(t, 1, 1, 1200, 48, 130, True, 2)
        if v is not None:
            stats[0] += len(v)
            stats[1] += 1
            v = e.flush_steps()
            if v is not None:
                stats[0] += len(v)
                stats[1] += 1


def test_mp_encoding_allocates_nothing():
    # MicroPython only: encoding while walking must not touch the heap.
    if not hasattr(gc, "mem_alloc"):
        raise RuntimeError("skip: needs MicroPython gc.mem_alloc")
    e = r.Encoder()
    stats = array("i", [0, 0])
    _walk(e, 30, 0, stats)  # warm up
    stats[0] = stats[1] = 0
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    _walk(e, 10000, 30, stats)  # 1000 SECONDS + 1000 STEPS + 100 alerts
    after = gc.mem_alloc()
    gc.enable()
    assert stats[1] == 2100 and stats[0] == 1000 * 92 + 1000 * 52 + 100 * 15, list(stats)
    assert after - before == 0, (after - before, sys.implementation.name)
    _singles(e, 10, stats)  # the other fixed-size records, too
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    _singles(e, 1000, stats)
    after = gc.mem_alloc()
    gc.enable()
    assert after - before == 0, ("singles", after - before, sys.implementation.name)


def _walk_windows(e, seconds, t0, stats):
    """The firmware's write path: 2 steps/s, a final second per second, a WINDOW every
    2 s (the shape of ``_walk``, for the WINDOW record)."""
    for s in range(t0, t0 + seconds):
        t = 1000 * s
        v = e.window_step(t + 100, 1)
        if v is not None:
            stats[0] += len(v)
            stats[1] += 1
        v = e.window_step(t + 600, -1)
        if v is not None:
            stats[0] += len(v)
            stats[1] += 1
        v = e.window_second(t - 6000, 1, 1, 120, 48, 130)
        if v is not None:
            stats[0] += len(v)
            stats[1] += 1
        if s % 2:
            v = e.flush_window()
            if v is not None:
                stats[0] += len(v)
                stats[1] += 1


def test_mp_window_encoding_allocates_nothing():
    if not hasattr(gc, "mem_alloc"):
        raise RuntimeError("skip: needs MicroPython gc.mem_alloc")
    e = r.Encoder()
    stats = array("i", [0, 0])
    _walk_windows(e, 30, 10, stats)  # warm up
    stats[0] = stats[1] = 0
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    _walk_windows(e, 10000, 40, stats)  # 5000 WINDOWs: 2 seconds + 4 steps each
    after = gc.mem_alloc()
    gc.enable()
    assert stats[1] == 5000 and stats[0] == 5000 * (13 + 8 + 8), list(stats)
    assert after - before == 0, (after - before, sys.implementation.name)


def _singles(e, n, stats):
    for i in range(n):
        stats[0] += len(e.step(1000 * i, -1, 800))
        stats[0] += len(e.interval(1000 * i, r.KIND_REST, 3, 1))
        stats[0] += len(e.note(1000 * i, r.NOTE_EVENTS_DROPPED, i))
        stats[0] += len(e.end(1000 * i, i, i, 3, i, i, r.END_IDLE))
