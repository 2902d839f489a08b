"""LSM6DSOX 6-axis IMU driver (I2C), register level, allocation-free FIFO reads.

Register addresses, bit positions and sensitivities are from the LSM6DSOX datasheet
(ST DS12814): the register map and register descriptions (cited below by register name
and address), the "Mechanical characteristics" table for sensitivities and the
"Temperature sensor characteristics" table. The WHO_AM_I value 0x6C is shared with the
LSM6DSO, whose registers used here are identical.

The driver takes a bus object (``machine.I2C`` on the device, a register model in the
tests) offering ``readfrom_mem_into(addr, reg, buf)`` and ``writeto_mem(addr, reg, buf)``;
it never imports ``machine``. Construction probes and configures the chip; importing
this module touches nothing.

Output units and frame (what the gait pipeline takes, see docs/gait-engine.md):
``ax, ay, az`` in mm/s^2 including gravity and ``gx, gy, gz`` in mrad/s, integers, in
FLU (x forward, y left, z up). Raw counts are scaled with the datasheet's nominal
sensitivities ("Mechanical characteristics": 0.061 / 0.122 / 0.244 / 0.488 mg/LSB at +-2/4/8/16 g;
4.375 / 8.75 / 17.50 / 35 / 70 mdps/LSB at +-125/250/500/1000/2000 dps), as exact
integer ratios, with 1 g = 9.80665 m/s^2 and pi = 355/113 (error 8e-8). Each scaled
value is within 1 unit of the exact product raw * sensitivity, and every intermediate
stays below 2^30, so it is a small int on the ESP32 as well.

Axis map
--------
``axis_map`` says, for FLU x, y, z in turn, which chip axis (with sign) points that way,
e.g. ``("-z", "-x", "+y")``: FLU x = -chip z, FLU y = -chip x, FLU z = +chip y. Both
sensors share the chip frame (the datasheet's pin-connection figure), so
one map serves both. A map must be a rotation (right-handed); a mirrored map is
rejected, since it would silently flip the sense of every angular rate.

Default mounting (``AXIS_MAP_LOWER_BACK``, hardware/mounting.md): the device is clipped
at the middle of the lower back with the chip's top facing the body; chip +z points
forward, chip +x to the wearer's left, chip +y up, so FLU x = +chip z, y = +chip x,
z = +chip y. ``AXIS_MAP_BACK_UPRIGHT`` is the same board turned to face away from the
body. The board HAL passes the map of the actual enclosure.

FIFO
----
Continuous mode, accelerometer and gyroscope batched at the ODR. Each FIFO word is a tag
byte (FIFO_DATA_OUT_TAG (78h): TAG_SENSOR in bits 7:3, TAG_CNT in bits 2:1, parity in
bit 0) and 6 data bytes. Words are read in bursts starting at 78h: with IF_INC set the
address wraps from 7Eh back to 78h after each word, so one transaction returns several
words (ST's own Arduino driver, stm32duino LSM6DSOX ``Get_FIFO_Sample``, reads N * 7
bytes from 78h the same way). An accelerometer and a gyroscope word with the same
TAG_CNT (the time-slot counter) form one sample, whichever comes first. A half sample
left at the end of a read is kept and completed by the next read; a half whose partner
never arrives (its slot was overwritten) is dropped and counted in ``fifo_orphans``.
Other tags (temperature, timestamp, configuration change) are skipped.
"""

import time
from array import array

from retrostep_core.compat import const

ADDR_SA0_LOW = const(0x6A)  # SDO/SA0 pin to GND (I2C address 110101xb, x = SA0)
ADDR_SA0_HIGH = const(0x6B)  # SDO/SA0 pin to VDDIO

# --- register map (datasheet "Register mapping" table) ---
_FIFO_CTRL1 = const(0x07)  # WTM[7:0]
_FIFO_CTRL2 = const(0x08)  # bit 0 WTM8; bits 7:1 compression/stop-on-WTM, kept 0
_FIFO_CTRL3 = const(0x09)  # BDR_GY[3:0] bits 7:4, BDR_XL[3:0] bits 3:0
_FIFO_CTRL4 = const(0x0A)  # FIFO_MODE[2:0] bits 2:0
_INT1_CTRL = const(0x0D)
_WHO_AM_I = const(0x0F)
_CTRL1_XL = const(0x10)  # ODR_XL[3:0] bits 7:4, FS[1:0]_XL bits 3:2
_CTRL2_G = const(0x11)  # ODR_G[3:0] bits 7:4, FS[1:0]_G bits 3:2, FS_125 bit 1
_CTRL3_C = const(0x12)
_CTRL6_C = const(0x15)
_CTRL9_XL = const(0x18)
_WAKE_UP_SRC = const(0x1B)
_OUT_TEMP_L = const(0x20)
_OUTX_L_G = const(0x22)  # gyro X..Z (0x22-0x27) then accel X..Z (0x28-0x2D)
_FIFO_STATUS1 = const(0x3A)  # DIFF_FIFO[7:0]
_TAP_CFG0 = const(0x56)
_TAP_CFG2 = const(0x58)
_WAKE_UP_THS = const(0x5B)
_WAKE_UP_DUR = const(0x5C)
_MD1_CFG = const(0x5E)
_FIFO_DATA_OUT_TAG = const(0x78)  # followed by FIFO_DATA_OUT_X_L .. Z_H (0x79-0x7E)

_WHO_AM_I_VALUE = const(0x6C)

# CTRL3_C (12h)
_BOOT = const(0x80)
_BDU = const(0x40)
_IF_INC = const(0x04)
_SW_RESET = const(0x01)
# CTRL9_XL (18h): I3C_DISABLE; on an I2C-only bus the I3C logic could misread traffic
# addressed to other devices (hardware/wiring.md)
_I3C_DISABLE = const(0x02)
# CTRL6_C (15h): XL_HM_MODE=1 disables accelerometer high-performance mode
_XL_HM_MODE = const(0x10)
# INT1_CTRL (0Dh)
_INT1_DRDY_XL = const(0x01)
_INT1_FIFO_TH = const(0x08)
# FIFO_STATUS2 (3Bh): DIFF_FIFO[9:8] in bits 1:0
_FIFO_WTM_IA = const(0x80)
_FIFO_OVR_IA = const(0x40)
_FIFO_OVR_LATCHED = const(0x08)
# FIFO_CTRL4 (0Ah) FIFO_MODE[2:0]
_MODE_BYPASS = const(0b000)
_MODE_CONTINUOUS = const(0b110)
# FIFO_DATA_OUT_TAG (78h) TAG_SENSOR[4:0] values ("FIFO tag" table)
_TAG_GYRO_NC = const(0x01)
_TAG_XL_NC = const(0x02)
# TAP_CFG0 (56h): LIR latches the basic interrupts until the source is read
_LIR = const(0x01)
# TAP_CFG2 (58h): INTERRUPTS_ENABLE enables the basic interrupts (wake-up, 6D, tap, free-fall)
_INTERRUPTS_ENABLE = const(0x80)
# WAKE_UP_DUR (5Ch): WAKE_DUR[1:0] bits 6:5, WAKE_THS_W bit 4
_WAKE_THS_W = const(0x10)
# MD1_CFG (5Eh)
_INT1_WU = const(0x20)
# WAKE_UP_SRC (1Bh)
_WU_IA = const(0x08)

# Settings the driver accepts. ODR code n (1..6) is the same in ODR_XL, ODR_G, BDR_XL and
# BDR_GY for these rates (CTRL1_XL, CTRL2_G and FIFO_CTRL3 descriptions; BDR "417 Hz"
# is the 416 Hz ODR).
ODR_HZ = (12.5, 26, 52, 104, 208, 416)
ACCEL_FS_G = (2, 4, 8, 16)
GYRO_FS_DPS = (125, 250, 500, 1000, 2000)
# FS[1:0]_XL with XL_FS_MODE = 0 (reset value): 00 = 2 g, 01 = 16 g, 10 = 4 g, 11 = 8 g
_XL_FS_BITS = (0b00, 0b10, 0b11, 0b01)
_XL_UG_PER_LSB = (61, 122, 244, 488)  # micro-g per LSB
# CTRL2_G bits 3:1 = FS[1:0]_G, FS_125: FS_125 overrides FS_G
_G_FS_BITS = (0b001, 0b000, 0b010, 0b100, 0b110)
_G_UDPS_PER_LSB = (4375, 8750, 17500, 35000, 70000)  # micro-dps per LSB

_FIFO_MAX_WTM_WORDS = const(511)  # WTM[8:0]
_RESET_POLLS = const(10)
_CHUNK_LOG2 = const(4)  # bursts of up to 16 words (112 bytes)
_FRAC_BITS = const(15)
_FRAC_HALF = const(16384)

AXIS_MAP_IDENTITY = ("+x", "+y", "+z")  # chip lying flat, chip x forward
AXIS_MAP_BACK_UPRIGHT = ("-z", "-x", "+y")  # see "Default mounting" above
AXIS_MAP_LOWER_BACK = ("+z", "+x", "+y")  # hardware/mounting.md: chip top faces the body
DEFAULT_AXIS_MAP = AXIS_MAP_LOWER_BACK

_ENODEV = const(19)


class LSM6DSOXError(OSError):
    """The chip is absent, is not an LSM6DSOX, or does not come out of reset."""


def _sleep_ms(ms):
    if hasattr(time, "sleep_ms"):
        time.sleep_ms(ms)
    else:  # CPython
        time.sleep(ms / 1000)


def _coefficient(num, den):
    """Split the ratio num/den into (a, b) with num/den ~= a + b / 2^15, b < 2^15."""
    a = num // den
    b = ((num - a * den) * (1 << _FRAC_BITS) + den // 2) // den
    if b >> _FRAC_BITS:
        a += 1
        b = 0
    return a, b


def _parse_axis_map(axis_map):
    """('-z', '-x', '+y') -> (chip index per FLU axis, sign per FLU axis)."""
    if len(axis_map) != 3:
        raise ValueError("axis_map needs 3 entries (FLU x, y, z)")
    idx = [0, 0, 0]
    sgn = [1, 1, 1]
    for i in range(3):
        s = axis_map[i]
        if not isinstance(s, str) or len(s) != 2 or s[0] not in "+-" or s[1] not in "xyz":
            raise ValueError("axis_map entries look like '+x' or '-z'")
        idx[i] = "xyz".index(s[1])
        sgn[i] = 1 if s[0] == "+" else -1
    if idx[0] == idx[1] or idx[0] == idx[2] or idx[1] == idx[2]:
        raise ValueError("axis_map must use each chip axis once")
    # Rotation matrix rows e_idx[i] * sgn[i]; determinant = parity(perm) * product(signs).
    parity = 1 if (idx[0], idx[1], idx[2]) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1
    if parity * sgn[0] * sgn[1] * sgn[2] != 1:
        raise ValueError("axis_map is a mirror image, not a rotation")
    return idx, sgn


class LSM6DSOX:
    """LSM6DSOX on an I2C bus: probed, reset and configured on construction.

    ``odr_hz`` (both sensors) in ``ODR_HZ``, ``accel_fs_g`` in ``ACCEL_FS_G``,
    ``gyro_fs_dps`` in ``GYRO_FS_DPS``; anything else raises ``ValueError``. An absent
    chip, a wrong WHO_AM_I or a reset that does not complete raises ``LSM6DSOXError``
    (an ``OSError``).
    """

    def __init__(
        self,
        bus,
        address=ADDR_SA0_LOW,
        odr_hz=52,
        accel_fs_g=4,
        gyro_fs_dps=1000,
        axis_map=DEFAULT_AXIS_MAP,
    ):
        self._bus = bus
        self._addr = address
        idx, sgn = _parse_axis_map(axis_map)
        self._i0, self._i1, self._i2 = idx[0], idx[1], idx[2]
        self._s0, self._s1, self._s2 = sgn[0], sgn[1], sgn[2]
        # Scratch buffers, allocated once.
        self._one = bytearray(1)
        self._two = bytearray(2)
        self._buf = bytearray(7 << _CHUNK_LOG2)
        mv = memoryview(self._buf)
        self._views = tuple(mv[: 7 << i] for i in range(_CHUNK_LOG2 + 1))
        self._raw = array("i", [0] * 6)  # pending FIFO half: chip-frame gx, gy, gz, ax, ay, az
        self._now = array("i", [0] * 6)  # read_sample's copy, so it never clobbers _raw
        self._v12 = mv[:12]
        self._have = 0  # bit 0: gyro half present, bit 1: accel half present
        self._slot = 0  # TAG_CNT of the pending half
        self._fifo_on = False
        self.fifo_watermark = False  # FIFO_WTM_IA at the last status read
        self.fifo_overrun = False  # FIFO_OVR_IA or FIFO_OVR_LATCHED at the last status read
        self.fifo_overruns = 0  # status reads that saw data overwritten since the previous one
        self.fifo_orphans = 0  # half samples dropped because their partner was lost
        self._xa = self._xb = self._ga = self._gb = 0
        self.odr_hz = self.accel_fs_g = self.gyro_fs_dps = 0
        self._odr_code = 0
        self._check_settings(odr_hz, accel_fs_g, gyro_fs_dps)
        self.reset()
        self.configure(odr_hz, accel_fs_g, gyro_fs_dps)

    # --- bus helpers ---
    def _read(self, reg):
        self._bus.readfrom_mem_into(self._addr, reg, self._one)
        return self._one[0]

    def _write(self, reg, value):
        self._one[0] = value
        self._bus.writeto_mem(self._addr, reg, self._one)

    def _update(self, reg, mask, value):
        self._write(reg, (self._read(reg) & ~mask) | value)

    # --- setup ---
    def reset(self):
        """Probe WHO_AM_I, software-reset the chip, set BDU and IF_INC, disable I3C.

        After the reset both sensors are powered down and the FIFO is in bypass mode.
        """
        try:
            who = self._read(_WHO_AM_I)
        except OSError as e:
            raise LSM6DSOXError(_ENODEV, "no device at I2C address 0x%02x" % self._addr) from e
        if who != _WHO_AM_I_VALUE:
            raise LSM6DSOXError(_ENODEV, "WHO_AM_I 0x%02x, not an LSM6DSOX" % who)
        self._write(_CTRL3_C, _IF_INC | _SW_RESET)
        for _ in range(_RESET_POLLS):
            if not self._read(_CTRL3_C) & (_SW_RESET | _BOOT):
                break
            _sleep_ms(1)
        else:
            raise LSM6DSOXError(_ENODEV, "LSM6DSOX software reset did not complete")
        # BDU: output registers are not updated between reading the low and high byte.
        # IF_INC: multi-byte accesses auto-increment the register address.
        self._write(_CTRL3_C, _BDU | _IF_INC)
        self._update(_CTRL9_XL, _I3C_DISABLE, _I3C_DISABLE)
        self._fifo_on = False
        self._have = 0

    def _check_settings(self, odr_hz, accel_fs_g, gyro_fs_dps):
        if odr_hz not in ODR_HZ:
            raise ValueError("odr_hz must be one of %r" % (ODR_HZ,))
        if accel_fs_g not in ACCEL_FS_G:
            raise ValueError("accel_fs_g must be one of %r" % (ACCEL_FS_G,))
        if gyro_fs_dps not in GYRO_FS_DPS:
            raise ValueError("gyro_fs_dps must be one of %r" % (GYRO_FS_DPS,))

    def configure(self, odr_hz, accel_fs_g, gyro_fs_dps):
        """Set the output data rate of both sensors and their full scales.

        Validates everything before writing anything. Leaves low-power mode (accelerometer
        back in high-performance mode, gyroscope on). A running FIFO follows the new rate.
        """
        self._check_settings(odr_hz, accel_fs_g, gyro_fs_dps)
        code = ODR_HZ.index(odr_hz) + 1
        ia = ACCEL_FS_G.index(accel_fs_g)
        ig = GYRO_FS_DPS.index(gyro_fs_dps)
        self._update(_CTRL6_C, _XL_HM_MODE, 0)
        self._write(_CTRL1_XL, code << 4 | _XL_FS_BITS[ia] << 2)
        self._write(_CTRL2_G, code << 4 | _G_FS_BITS[ig] << 1)
        # mm/s^2 per LSB = ug * 1e-6 * 9806.65; mrad/s per LSB = udps * 1e-6 * pi/180 * 1e3
        self._xa, self._xb = _coefficient(_XL_UG_PER_LSB[ia] * 980665, 100000000)
        self._ga, self._gb = _coefficient(_G_UDPS_PER_LSB[ig] * 355, 180000 * 113)
        self.odr_hz, self.accel_fs_g, self.gyro_fs_dps = odr_hz, accel_fs_g, gyro_fs_dps
        self._odr_code = code
        if self._fifo_on:
            self._write(_FIFO_CTRL3, code << 4 | code)

    def low_power(self, accel_odr_hz=26):
        """Stop the gyroscope and the FIFO; keep the accelerometer running in low-power mode.

        For wake-on-motion while idle (the wake-up function only needs the accelerometer).
        ``configure()`` returns to normal operation; ``start_fifo()`` restarts batching.
        """
        if accel_odr_hz not in ODR_HZ:
            raise ValueError("accel_odr_hz must be one of %r" % (ODR_HZ,))
        self.stop_fifo()
        self._update(_CTRL2_G, 0xF0, 0)  # ODR_G = 0000: gyroscope power-down
        self._update(_CTRL6_C, _XL_HM_MODE, _XL_HM_MODE)
        self._update(_CTRL1_XL, 0xF0, (ODR_HZ.index(accel_odr_hz) + 1) << 4)

    # --- interrupts ---
    def route_int1(self, fifo_threshold=False, data_ready=False):
        """Choose what drives INT1 (active high, push-pull: the reset defaults).

        ``fifo_threshold``: FIFO level at or above the watermark (INT1_FIFO_TH);
        ``data_ready``: a new accelerometer sample, and so a new gyro sample at the same
        ODR (INT1_DRDY_XL). The wake-up interrupt is routed by ``wake_on_motion``.
        """
        value = 0
        if fifo_threshold:
            value |= _INT1_FIFO_TH
        if data_ready:
            value |= _INT1_DRDY_XL
        self._write(_INT1_CTRL, value)

    def wake_on_motion(self, threshold_mg, duration=1):
        """Raise INT1 when the acceleration slope exceeds ``threshold_mg`` on any axis.

        The threshold is quantised to the wake-up threshold LSB (WAKE_UP_THS / WAKE_THS_W):
        full scale / 256 if it fits in 6 bits, otherwise full scale / 64 (62.5 mg at
        +-4 g); ``duration`` (0..3) is in ODR periods. The interrupt is latched (LIR)
        until ``wake_status()`` reads the source. Returns the threshold applied, in mg.
        """
        if not 0 <= duration <= 3:
            raise ValueError("duration must be 0..3 ODR periods")
        fs_mg = self.accel_fs_g * 1000
        if threshold_mg <= 0:
            raise ValueError("threshold_mg must be positive")
        weight = _WAKE_THS_W
        ths = (threshold_mg * 512 + fs_mg) // (2 * fs_mg)  # round(mg * 256 / fs)
        lsb_div = 256
        if ths > 63:
            weight = 0
            ths = (threshold_mg * 128 + fs_mg) // (2 * fs_mg)  # round(mg * 64 / fs)
            lsb_div = 64
        if ths > 63:
            raise ValueError("threshold_mg above the wake-up range at this full scale")
        if ths < 1:
            ths = 1
        self._write(_WAKE_UP_THS, ths)  # SINGLE_DOUBLE_TAP = USR_OFF_ON_WU = 0
        self._update(_WAKE_UP_DUR, 0x70, duration << 5 | weight)
        self._update(_TAP_CFG0, _LIR, _LIR)
        self._update(_MD1_CFG, _INT1_WU, _INT1_WU)
        self._update(_TAP_CFG2, _INTERRUPTS_ENABLE, _INTERRUPTS_ENABLE)
        return ths * fs_mg // lsb_div

    def stop_wake_on_motion(self):
        self._update(_MD1_CFG, _INT1_WU, 0)
        self._update(_TAP_CFG2, _INTERRUPTS_ENABLE, 0)

    def wake_status(self):
        """True if a wake-up event happened; reading it releases the latched INT1."""
        return bool(self._read(_WAKE_UP_SRC) & _WU_IA)

    # --- FIFO ---
    def start_fifo(self, watermark_samples=26):
        """Empty the FIFO and batch both sensors at the ODR in continuous mode.

        The watermark is in samples (accelerometer + gyroscope word pairs), 1..255; the
        FIFO threshold flag and INT1_FIFO_TH fire when that many are stored. The FIFO
        holds 512 words (256 samples, ~4.9 s at 52 Hz); in continuous mode the oldest
        are overwritten when it is full.
        """
        wtm = 2 * watermark_samples
        if not 2 <= wtm <= _FIFO_MAX_WTM_WORDS:
            raise ValueError("watermark_samples must be 1..255")
        self._write(_FIFO_CTRL4, _MODE_BYPASS)  # bypass empties the FIFO
        self._write(_FIFO_CTRL1, wtm & 0xFF)
        self._write(_FIFO_CTRL2, wtm >> 8)
        code = self._odr_code
        self._write(_FIFO_CTRL3, code << 4 | code)
        self._write(_FIFO_CTRL4, _MODE_CONTINUOUS)
        self._fifo_on = True
        self._have = 0

    def stop_fifo(self):
        """Bypass mode: the FIFO stops and is emptied."""
        self._write(_FIFO_CTRL4, _MODE_BYPASS)
        self._fifo_on = False
        self._have = 0

    def fifo_level(self):
        """Number of unread FIFO words (2 per sample). Also updates ``fifo_watermark``,
        ``fifo_overrun`` and ``fifo_overruns`` from the same status read (reading it
        clears the chip's latched overrun flag)."""
        b = self._two
        self._bus.readfrom_mem_into(self._addr, _FIFO_STATUS1, b)
        s2 = b[1]
        self.fifo_watermark = bool(s2 & _FIFO_WTM_IA)
        self.fifo_overrun = bool(s2 & (_FIFO_OVR_IA | _FIFO_OVR_LATCHED))
        if s2 & _FIFO_OVR_LATCHED:
            self.fifo_overruns += 1
        return b[0] | (s2 & 0x03) << 8

    def read_fifo(self, out, max_samples):
        """Read up to ``max_samples`` samples into ``out`` (``array('i')``, 6 per sample).

        Sample k goes to ``out[6k : 6k + 6]`` as ax, ay, az (mm/s^2), gx, gy, gz
        (mrad/s) in FLU, oldest first. Returns the number of samples written. Allocates
        nothing: bursts go into a preallocated buffer and all arithmetic is small-int.
        """
        if max_samples <= 0:
            return 0
        if len(out) < 6 * max_samples:
            raise ValueError("out holds fewer than 6 * max_samples values")
        words = self.fifo_level()
        budget = 2 * max_samples - (1 if self._have else 0)
        if words > budget:
            words = budget
        buf = self._buf
        bus = self._bus
        n = 0
        i = _CHUNK_LOG2
        while words > 0:
            k = 1 << i
            if k > words:
                i -= 1
                continue
            bus.readfrom_mem_into(self._addr, _FIFO_DATA_OUT_TAG, self._views[i])
            end = 7 * k
            o = 0
            while o < end:
                sensor = buf[o] >> 3
                if sensor == _TAG_GYRO_NC or sensor == _TAG_XL_NC:
                    n = self._word(buf, o, sensor, out, n)
                o += 7
            words -= k
        return n

    def _word(self, buf, o, sensor, out, n):
        """Store one gyro or accel word; emit a sample into ``out`` when its pair is whole."""
        bit = 1 if sensor == _TAG_GYRO_NC else 2
        slot = (buf[o] >> 1) & 0x03
        have = self._have
        if have and (slot != self._slot or have & bit):
            self.fifo_orphans += 1  # the partner of the pending half was lost
            have = 0
        r = self._raw
        j = 0 if bit == 1 else 3
        for a in range(3):
            v = buf[o + 1 + 2 * a] | buf[o + 2 + 2 * a] << 8
            r[j + a] = v - 65536 if v > 32767 else v
        have |= bit
        self._slot = slot
        if have == 3:
            self._have = 0
            self._emit(r, out, 6 * n)
            return n + 1
        self._have = have
        return n

    def _emit(self, r, out, b):
        """Map chip-frame raw r (gx, gy, gz, ax, ay, az) to FLU and scale into out[b:b+6]."""
        xa = self._xa
        xb = self._xb
        ga = self._ga
        gb = self._gb
        v = r[3 + self._i0] * self._s0
        out[b] = v * xa + ((v * xb + _FRAC_HALF) >> _FRAC_BITS)
        v = r[3 + self._i1] * self._s1
        out[b + 1] = v * xa + ((v * xb + _FRAC_HALF) >> _FRAC_BITS)
        v = r[3 + self._i2] * self._s2
        out[b + 2] = v * xa + ((v * xb + _FRAC_HALF) >> _FRAC_BITS)
        v = r[self._i0] * self._s0
        out[b + 3] = v * ga + ((v * gb + _FRAC_HALF) >> _FRAC_BITS)
        v = r[self._i1] * self._s1
        out[b + 4] = v * ga + ((v * gb + _FRAC_HALF) >> _FRAC_BITS)
        v = r[self._i2] * self._s2
        out[b + 5] = v * ga + ((v * gb + _FRAC_HALF) >> _FRAC_BITS)

    # --- direct reads ---
    def read_sample(self, out):
        """Latest output registers (not the FIFO) into out[0:6], same units and frame as
        ``read_fifo``. For data-ready operation without the FIFO."""
        buf = self._buf
        # Shares _buf with read_fifo: a pending FIFO half lives in _raw, not in _buf.
        self._bus.readfrom_mem_into(self._addr, _OUTX_L_G, self._v12)
        r = self._now
        for a in range(6):
            v = buf[2 * a] | buf[2 * a + 1] << 8
            r[a] = v - 65536 if v > 32767 else v
        self._emit(r, out, 0)

    def read_temperature(self):
        """Die temperature in hundredths of a degree Celsius (256 LSB/degC, 0 LSB = 25 degC,
        "Temperature sensor characteristics")."""
        b = self._two
        self._bus.readfrom_mem_into(self._addr, _OUT_TEMP_L, b)
        v = b[0] | b[1] << 8
        if v > 32767:
            v -= 65536
        return 2500 + (v * 100 + 128) // 256
