"""LSM6DSOX driver against the register-level chip model (tests/core/lsm6dsox_model.py).

Portable: runs under CPython (pytest) and inside the MicroPython unix port.
"""

import gc
import math
from array import array

from lsm6dsox_model import (
    CTRL1_XL,
    CTRL2_G,
    CTRL3_C,
    CTRL9_XL,
    FIFO_CTRL1,
    FIFO_CTRL2,
    FIFO_CTRL3,
    FIFO_CTRL4,
    FIFO_DATA_OUT_TAG,
    FIFO_DEPTH_WORDS,
    INT1_CTRL,
    MD1_CFG,
    TAP_CFG0,
    TAP_CFG2,
    WAKE_UP_DUR,
    WAKE_UP_SRC,
    WAKE_UP_THS,
    WHO_AM_I,
    LSM6DSOXModel,
)

from retrostep_device.lsm6dsox import (
    ACCEL_FS_G,
    AXIS_MAP_BACK_UPRIGHT,
    AXIS_MAP_IDENTITY,
    AXIS_MAP_LOWER_BACK,
    DEFAULT_AXIS_MAP,
    GYRO_FS_DPS,
    LSM6DSOX,
    ODR_HZ,
    LSM6DSOXError,
)

UG = {2: 61, 4: 122, 8: 244, 16: 488}  # datasheet sensitivities, micro-g per LSB
UDPS = {125: 4375, 250: 8750, 500: 17500, 1000: 35000, 2000: 70000}  # micro-dps per LSB
MM_S2_PER_G = 9806.65
MRAD_PER_DEG = math.pi / 180 * 1000


def _raises(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc:
        return True
    raise AssertionError("%s not raised by %r%r" % (exc.__name__, fn, args))


def _flu(axis_map, v):
    """Chip-frame vector -> FLU through an axis map like ('-z', '-x', '+y')."""
    return [(1 if s[0] == "+" else -1) * v["xyz".index(s[1])] for s in axis_map]


def _sample(k):
    """Distinct, sign-varying physical values for sample k (chip frame, g and dps)."""
    return (0.01 * k, -0.5 + 0.003 * k, 1.0, 100.0 - k, 2.0 * k - 50, -7.5)


def _expected_ints(model_raw, axis_map, afs, gfs):
    """The integers read_fifo should return for raw counts (a, g), within 1."""
    a, g = model_raw
    acc = [r * UG[afs] / 1e6 * MM_S2_PER_G for r in a]
    gyr = [r * UDPS[gfs] / 1e6 * MRAD_PER_DEG for r in g]
    return _flu(axis_map, acc) + _flu(axis_map, gyr)


def _assert_close(got, expected, tol, what):
    for i in range(6):
        assert abs(got[i] - expected[i]) <= tol[i], (what, i, list(got[:6]), expected)


def _imu(**kw):
    order = kw.pop("fifo_order", "GA")
    model = LSM6DSOXModel(fifo_order=order)
    return model, LSM6DSOX(model, **kw)


# --- probe and configuration -------------------------------------------------------


def test_probe_reset_and_default_configuration():
    model, imu = _imu()
    assert model.resets == 1
    assert model.regs[CTRL3_C] == 0x44  # BDU | IF_INC, SW_RESET cleared
    assert model.regs[CTRL9_XL] == 0xE2  # reset value E0h + I3C_DISABLE
    # 52 Hz = ODR code 0011; +-4 g = FS_XL 10; +-1000 dps = FS_G 10, FS_125 0
    assert model.regs[CTRL1_XL] == 0x38
    assert model.regs[CTRL2_G] == 0x38
    assert model.accel_odr_hz() == 52 and model.gyro_odr_hz() == 52
    assert model.accel_fs_g() == 4 and model.gyro_fs_dps() == 1000
    assert model.accel_high_performance()
    assert model.fifo_mode() == 0
    assert (imu.odr_hz, imu.accel_fs_g, imu.gyro_fs_dps) == (52, 4, 1000)
    assert model.bad_writes == []


def test_every_accepted_setting_reads_back_from_the_chip():
    model, imu = _imu()
    for odr in ODR_HZ:
        for afs in ACCEL_FS_G:
            for gfs in GYRO_FS_DPS:
                imu.configure(odr, afs, gfs)
                assert model.accel_odr_hz() == odr and model.gyro_odr_hz() == odr
                assert model.accel_fs_g() == afs, (afs, hex(model.regs[CTRL1_XL]))
                assert model.gyro_fs_dps() == gfs, (gfs, hex(model.regs[CTRL2_G]))
                assert model.regs[CTRL1_XL] & 0x03 == 0 and model.regs[CTRL2_G] & 0x01 == 0
    # the irregular encodings, straight from the CTRL1_XL / CTRL2_G descriptions
    imu.configure(12.5, 16, 125)
    assert model.regs[CTRL1_XL] == 0x14 and model.regs[CTRL2_G] == 0x12
    imu.configure(416, 8, 2000)
    assert model.regs[CTRL1_XL] == 0x6C and model.regs[CTRL2_G] == 0x6C
    imu.configure(26, 2, 250)
    assert model.regs[CTRL1_XL] == 0x20 and model.regs[CTRL2_G] == 0x20
    assert model.bad_writes == []


def test_bad_settings_raise_value_error_before_touching_the_chip():
    model = LSM6DSOXModel()
    _raises(ValueError, LSM6DSOX, model, odr_hz=50)
    _raises(ValueError, LSM6DSOX, model, accel_fs_g=6)
    _raises(ValueError, LSM6DSOX, model, gyro_fs_dps=245)
    assert model.transactions == 0
    imu = LSM6DSOX(model)
    before = bytes(model.regs)
    _raises(ValueError, imu.configure, 833, 4, 500)
    _raises(ValueError, imu.configure, 52, 3, 500)
    _raises(ValueError, imu.configure, 52, 4, 4000)
    _raises(ValueError, imu.low_power, 1.6)
    _raises(ValueError, imu.start_fifo, 0)
    _raises(ValueError, imu.start_fifo, 256)
    _raises(ValueError, imu.wake_on_motion, 0)
    _raises(ValueError, imu.wake_on_motion, 250, 4)
    _raises(ValueError, imu.read_fifo, array("i", [0] * 11), 2)
    assert bytes(model.regs) == before
    for bad in (("+x", "+y"), ("+x", "+x", "+z"), ("x", "+y", "+z"), ("+x", "+y", "+w")):
        _raises(ValueError, LSM6DSOX, model, axis_map=bad)
    # a mirror image is not a mounting: it would flip the sense of every rotation
    _raises(ValueError, LSM6DSOX, model, axis_map=("+x", "+y", "-z"))
    _raises(ValueError, LSM6DSOX, model, axis_map=("+y", "+x", "+z"))


def test_absent_or_wrong_chip_raises_oserror():
    _raises(OSError, LSM6DSOX, LSM6DSOXModel(present=False))
    _raises(LSM6DSOXError, LSM6DSOX, LSM6DSOXModel(present=False))
    # SA0 high: the chip answers at 0x6B only
    model = LSM6DSOXModel(address=0x6B)
    _raises(OSError, LSM6DSOX, model)
    LSM6DSOX(model, address=0x6B)
    # something else answers at the address (WHO_AM_I 0x69 is the LSM6DS3)
    model = LSM6DSOXModel()
    model.regs[WHO_AM_I] = 0x69
    _raises(LSM6DSOXError, LSM6DSOX, model)
    # a reset that never completes
    _raises(OSError, LSM6DSOX, LSM6DSOXModel(reset_busy_reads=1000))


def test_reset_restores_defaults_and_waits_for_sw_reset_to_clear():
    model, imu = _imu()
    imu.start_fifo(10)
    imu.route_int1(fifo_threshold=True)
    model.reset_busy_reads = 3
    model.transactions = 0
    imu.reset()
    assert model.resets == 2
    assert model.regs[CTRL1_XL] == 0 and model.regs[INT1_CTRL] == 0
    assert model.fifo_mode() == 0 and model.regs[FIFO_CTRL3] == 0
    assert model.regs[CTRL3_C] == 0x44
    assert model.regs[CTRL9_XL] == 0xE2
    # WHO_AM_I, the reset write, 4 polls (3 busy + 1 clear), the BDU/IF_INC write,
    # read-modify-write of CTRL9_XL
    assert model.transactions == 9


# --- units and frame --------------------------------------------------------------


def test_known_input_comes_out_in_flu_units_at_every_full_scale():
    out = array("i", [0] * 6)
    for axis_map in (DEFAULT_AXIS_MAP, AXIS_MAP_IDENTITY, ("+y", "-x", "+z"), ("-x", "+z", "+y")):
        for afs in ACCEL_FS_G:
            for gfs in GYRO_FS_DPS:
                model, imu = _imu(accel_fs_g=afs, gyro_fs_dps=gfs, axis_map=axis_map)
                lsb = [UG[afs] / 1e6 * MM_S2_PER_G] * 3 + [UDPS[gfs] / 1e6 * MRAD_PER_DEG] * 3
                within_lsb = [max(1.0, x) for x in lsb]
                # 1 g on chip z, 100 dps on chip x, and near-full-scale negative values
                for phys in (
                    (0.0, 0.0, 1.0, 100.0, 0.0, 0.0),
                    (-0.98 * afs, 0.5 * afs, -0.25, -0.98 * gfs, 0.5 * gfs, 3.0),
                ):
                    raw = model.push_sample(*phys)
                    want = _flu(axis_map, [p * MM_S2_PER_G for p in phys[:3]])
                    want += _flu(axis_map, [p * MRAD_PER_DEG for p in phys[3:]])
                    want = [round(x) for x in want]
                    exact = _expected_ints(raw, axis_map, afs, gfs)
                    imu.read_sample(out)
                    _assert_close(out, want, within_lsb, ("sample", axis_map, afs, gfs))
                    _assert_close(out, exact, [1] * 6, ("exact", axis_map, afs, gfs))
                    imu.start_fifo(1)
                    model.push_sample(*phys)
                    assert imu.read_fifo(out, 1) == 1
                    _assert_close(out, exact, [1] * 6, ("fifo", axis_map, afs, gfs))
    # spelled out once for the facing-away mounting (FLU x = -chip z, y = -chip x, z = +chip y)
    model, imu = _imu(accel_fs_g=2, gyro_fs_dps=250, axis_map=AXIS_MAP_BACK_UPRIGHT)
    model.push_sample(0.0, 0.0, 1.0, 100.0, 0.0, 0.0)
    imu.read_sample(out)
    assert abs(out[0] + 9807) <= 1 and out[1] == 0 and out[2] == 0
    assert out[3] == 0 and abs(out[4] + 1745) <= 1 and out[5] == 0
    # and the default, hardware/mounting.md: upright at rest (chip +y up) reads az = +g
    model, imu = _imu(accel_fs_g=2, gyro_fs_dps=250)
    model.push_sample(0.0, 1.0, 0.0, 0.0, 0.0, 100.0)
    imu.read_sample(out)
    assert out[0] == 0 and abs(out[1]) == 0 and abs(out[2] - 9807) <= 1
    assert abs(out[3] - 1745) <= 1 and out[4] == 0 and out[5] == 0
    assert DEFAULT_AXIS_MAP == AXIS_MAP_LOWER_BACK == ("+z", "+x", "+y")


def test_temperature_in_centidegrees():
    model, imu = _imu()
    model.set_temperature(30.5)
    assert imu.read_temperature() == 3050
    model.set_temperature(-10)
    assert imu.read_temperature() == -1000


# --- FIFO -------------------------------------------------------------------------


def _fifo_imu(order="GA", watermark=10, axis_map=AXIS_MAP_IDENTITY):
    model, imu = _imu(fifo_order=order, axis_map=axis_map)
    imu.start_fifo(watermark)
    return model, imu


def _push(model, first, n):
    return [model.push_sample(*_sample(k)) for k in range(first, first + n)]


def _check_samples(out, raws, what, afs=4, gfs=1000, axis_map=AXIS_MAP_IDENTITY):
    for k in range(len(raws)):
        exact = _expected_ints(raws[k], axis_map, afs, gfs)
        _assert_close(out[6 * k : 6 * k + 6], exact, [1] * 6, (what, k))


def test_fifo_configuration_registers():
    model, imu = _fifo_imu(watermark=10)
    assert model.regs[FIFO_CTRL1] == 20 and model.regs[FIFO_CTRL2] == 0  # WTM in words
    assert model.regs[FIFO_CTRL3] == 0x33  # BDR_GY = BDR_XL = 52 Hz
    assert model.regs[FIFO_CTRL4] == 0x06  # continuous mode
    assert model.bdr_xl_hz() == 52 and model.bdr_gy_hz() == 52
    imu.start_fifo(200)  # 400 words: WTM8 set
    assert model.regs[FIFO_CTRL1] == 0x90 and model.regs[FIFO_CTRL2] == 0x01
    assert model.fifo_watermark_words() == 400
    imu.configure(104, 4, 1000)  # a running FIFO follows the new rate
    assert model.regs[FIFO_CTRL3] == 0x44
    imu.stop_fifo()
    assert model.fifo_mode() == 0
    assert model.bad_writes == []


def test_fifo_level_watermark_and_order():
    for order in ("GA", "AG"):
        model, imu = _fifo_imu(order, watermark=10)
        raws = _push(model, 0, 9)
        assert imu.fifo_level() == 18 and not imu.fifo_watermark
        raws += _push(model, 9, 1)
        assert imu.fifo_level() == 20 and imu.fifo_watermark
        assert not imu.fifo_overrun
        out = array("i", [0] * 6 * 64)
        assert imu.read_fifo(out, 64) == 10
        _check_samples(out, raws, order)
        assert imu.fifo_level() == 0 and not imu.fifo_watermark


def test_fifo_partial_reads_continue_where_they_left_off():
    model, imu = _fifo_imu()
    raws = _push(model, 0, 25)
    out = array("i", [0] * 60)
    got = []
    for want in (10, 10, 5, 0):
        assert imu.read_fifo(out, 10) == want
        got += list(out[: 6 * want])
    _check_samples(got, raws, "partial")
    # the bursts are chunked: 25 samples = 50 words in a handful of transactions
    model.transactions = 0
    _push(model, 0, 25)
    imu.read_fifo(array("i", [0] * 150), 25)
    assert model.transactions <= 6  # status + 16 + 16 + 16 + 2 words


def test_fifo_overrun_keeps_the_newest_words():
    model, imu = _fifo_imu(watermark=100)
    raws = _push(model, 0, 300)  # 600 words into 512
    assert imu.fifo_level() == FIFO_DEPTH_WORDS
    assert imu.fifo_overrun and imu.fifo_overruns == 1 and imu.fifo_watermark
    out = array("i", [0] * 6 * 300)
    assert imu.read_fifo(out, 300) == FIFO_DEPTH_WORDS // 2
    _check_samples(out, raws[300 - FIFO_DEPTH_WORDS // 2 :], "overrun")
    assert imu.fifo_level() == 0 and not imu.fifo_overrun and imu.fifo_overruns == 1
    assert imu.fifo_orphans == 0


def test_half_sample_at_the_end_of_a_read_is_completed_by_the_next():
    # TAG_CNT marks the time slot, so the half waits in the driver for its partner.
    out = array("i", [0] * 60)
    for order in ("GA", "AG"):
        model, imu = _fifo_imu(order)
        raws = _push(model, 0, 3)
        raws.append(model.push_sample(*_sample(3), first_only=True))
        assert imu.fifo_level() == 7
        assert imu.read_fifo(out, 10) == 3
        _check_samples(out, raws[:3], order)
        assert imu.fifo_level() == 0
        model.push_rest()
        raws += _push(model, 4, 3)
        # a pending half leaves room for 2 * 2 - 1 = 3 words: its partner and one pair
        assert imu.read_fifo(out, 2) == 2
        _check_samples(out, raws[3:5], order)
        assert imu.fifo_level() == 4
        assert imu.read_fifo(out, 10) == 2
        _check_samples(out, raws[5:7], order)
        assert imu.fifo_orphans == 0


def test_half_sample_whose_partner_was_lost_is_dropped():
    out = array("i", [0] * 60)
    for order in ("GA", "AG"):
        model, imu = _fifo_imu(order)
        raws = _push(model, 0, 2)
        model.push_sample(*_sample(2), first_only=True)  # partner never written
        raws += _push(model, 3, 2)
        assert imu.fifo_level() == 9
        assert imu.read_fifo(out, 10) == 4
        _check_samples(out, raws, order)
        assert imu.fifo_orphans == 1


def test_other_fifo_tags_are_skipped():
    model, imu = _fifo_imu()
    raws = _push(model, 0, 2)
    # a temperature word (TAG_SENSOR 0x03) between two samples
    model._enqueue(bytearray((0x03 << 3, 1, 2, 0, 0, 0, 0)))
    raws += _push(model, 2, 1)
    out = array("i", [0] * 60)
    assert imu.read_fifo(out, 10) == 3
    _check_samples(out, raws, "tags")


# --- interrupts and power ------------------------------------------------------------


def test_int1_routing():
    model, imu = _imu()
    imu.route_int1(fifo_threshold=True)
    assert model.regs[INT1_CTRL] == 0x08  # INT1_FIFO_TH
    imu.route_int1(data_ready=True)
    assert model.regs[INT1_CTRL] == 0x01  # INT1_DRDY_XL
    imu.route_int1(fifo_threshold=True, data_ready=True)
    assert model.regs[INT1_CTRL] == 0x09
    imu.route_int1()
    assert model.regs[INT1_CTRL] == 0


def test_wake_on_motion_configuration():
    model, imu = _imu()  # +-4 g
    assert imu.wake_on_motion(250) == 250  # fine weight: 4 g / 256 = 15.6 mg per LSB
    assert model.regs[WAKE_UP_THS] == 16
    assert model.regs[WAKE_UP_DUR] == 0x30  # WAKE_DUR = 1 ODR, WAKE_THS_W = 1
    assert model.regs[TAP_CFG0] & 0x01  # LIR
    assert model.regs[MD1_CFG] == 0x20  # INT1_WU
    assert model.regs[TAP_CFG2] == 0x80  # INTERRUPTS_ENABLE
    assert imu.wake_on_motion(2000, duration=3) == 2000  # coarse weight: 62.5 mg per LSB
    assert model.regs[WAKE_UP_THS] == 32 and model.regs[WAKE_UP_DUR] == 0x60
    _raises(ValueError, imu.wake_on_motion, 5000)  # above 63 * 62.5 mg
    assert not imu.wake_status()
    model.regs[WAKE_UP_SRC] = 0x08  # WU_IA
    assert imu.wake_status()
    imu.stop_wake_on_motion()
    assert model.regs[MD1_CFG] == 0 and model.regs[TAP_CFG2] == 0
    assert model.bad_writes == []


def test_low_power_stops_gyro_and_fifo_and_configure_restores():
    model, imu = _fifo_imu()
    imu.low_power(26)
    assert model.gyro_odr_hz() == 0 and model.accel_odr_hz() == 26
    assert not model.accel_high_performance()
    assert model.fifo_mode() == 0
    model.push_sample(*_sample(0))
    assert imu.fifo_level() == 0
    imu.configure(52, 4, 1000)
    imu.start_fifo(10)
    assert model.gyro_odr_hz() == 52 and model.accel_high_performance()
    model.push_sample(*_sample(0))
    assert imu.fifo_level() == 2
    assert model.bad_writes == []


# --- the model itself ------------------------------------------------------------------


def test_model_follows_the_datasheet_access_rules():
    model = LSM6DSOXModel()
    buf = bytearray(3)
    model.readfrom_mem_into(0x6A, 0x10, buf)  # IF_INC = 1 after power-on
    assert bytes(buf) == bytes((0, 0, 0x04))
    model.writeto_mem(0x6A, CTRL3_C, bytes((0x00,)))  # IF_INC off: same register 3 times
    model.readfrom_mem_into(0x6A, WHO_AM_I, buf)
    assert bytes(buf) == bytes((0x6C, 0x6C, 0x6C))
    model.writeto_mem(0x6A, CTRL3_C, bytes((0x04,)))
    model.writeto_mem(0x6A, WHO_AM_I, bytes((0x00,)))  # read-only: ignored, recorded
    assert model.regs[WHO_AM_I] == 0x6C and model.bad_writes == [WHO_AM_I]
    _raises(OSError, model.readfrom_mem_into, 0x6B, WHO_AM_I, buf)
    # FIFO words read in one burst: the address wraps from 7Eh to 78h
    model.writeto_mem(0x6A, CTRL1_XL, bytes((0x38, 0x34)))
    model.writeto_mem(0x6A, FIFO_CTRL3, bytes((0x33, 0x06)))
    model.push_sample(0, 0, 1.0, 0, 0, 0)
    words = bytearray(14)
    model.readfrom_mem_into(0x6A, FIFO_DATA_OUT_TAG, words)
    assert words[0] >> 3 == 0x01 and words[7] >> 3 == 0x02  # gyro first, then accel
    assert (words[0] >> 1) & 3 == (words[7] >> 1) & 3 == 0  # same TAG_CNT
    assert words[12] | words[13] << 8 == round(1e6 / 122)  # accel z at +-4 g
    assert model.fifo_level() == 0


# --- MicroPython only -------------------------------------------------------------------


def test_mp_read_fifo_allocates_nothing():
    if not hasattr(gc, "mem_alloc"):
        raise RuntimeError("skip: needs MicroPython gc.mem_alloc")
    model, imu = _fifo_imu(watermark=100, axis_map=DEFAULT_AXIS_MAP)
    _push(model, 0, 100)
    model.push_sample(*_sample(100), first_only=True)  # end on a half sample too
    out = array("i", [0] * 6 * 100)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    n = imu.read_fifo(out, 100)
    level = imu.fifo_level()
    after = gc.mem_alloc()
    gc.enable()
    assert n == 100 and level == 1, (n, level)
    assert after - before == 0, after - before
