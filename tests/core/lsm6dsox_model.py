"""Register-level model of the LSM6DSOX behind an I2C bus, written from the datasheet (DS12814).

The model *is* the bus: it answers ``readfrom_mem_into(addr, reg, buf)`` and
``writeto_mem(addr, reg, buf)`` like ``machine.I2C`` with one LSM6DSOX at ``address``
(0x6A with SA0 low, 0x6B with SA0 high). Anything else NACKs: ``OSError(ENODEV)``, which is
what MicroPython raises.

Modelled:

* a 128-byte register file with the datasheet reset values of the user registers
  (PIN_CTRL 3Fh, CTRL3_C 04h = IF_INC, CTRL9_XL E0h, WHO_AM_I 6Ch, the rest 00h);
  writes to read-only or reserved addresses are ignored by the chip and recorded here in
  ``bad_writes`` so a test can assert the driver never makes one;
* multi-byte accesses: the address auto-increments when CTRL3_C.IF_INC is set (otherwise
  every byte goes to the same register); inside the FIFO output block it wraps from 7Eh
  back to 78h, so one burst reads consecutive FIFO words (what ST's own drivers rely on
  when they read N * 7 bytes from 78h);
* SW_RESET (CTRL3_C bit 0): resets the registers and the FIFO; the bit reads back as 1 for
  ``reset_busy_reads`` reads of CTRL3_C, then self-clears;
* decoding of ODR / full scale (CTRL1_XL: 00 = 2 g, 01 = 16 g, 10 = 4 g, 11 = 8 g while
  CTRL8_XL.XL_FS_MODE = 0, else 01 = 2 g; CTRL2_G: FS_125 overrides FS_G);
* the FIFO: 512 words of tag + 6 bytes (3 KB uncompressed; the datasheet's "9 kbyte" is
  with compression), modes bypass (empties it), FIFO (stops when full) and continuous
  (overwrites the oldest word; the trigger-dependent modes behave as continuous here),
  batching only sensors whose BDR and ODR are both non-zero; FIFO_STATUS1/2 with
  DIFF_FIFO[9:0], FIFO_WTM_IA (level >= WTM, WTM > 0), FIFO_FULL_IA (the next time slot
  will not fit), FIFO_OVR_IA (a word was overwritten and none read since) and
  FIFO_OVR_LATCHED (cleared by reading FIFO_STATUS2). A word is consumed when its last
  byte (FIFO_DATA_OUT_Z_H, 7Eh) is read;
* tags: TAG_SENSOR in bits 7:3 (0x01 gyroscope, 0x02 accelerometer), TAG_CNT (bits 2:1)
  counting time slots, bit 0 parity (even parity over the byte here; the driver does not
  check it). The datasheet does not fix the order of the two words of one time slot, so
  ``fifo_order`` chooses it ("GA", gyroscope first, as the data sets of the earlier
  LSM6DS3/LSM6DSL FIFOs, or "AG");
* output registers OUTX_L_G..OUTZ_H_A, STATUS_REG XLDA/GDA and OUT_TEMP (256 LSB/degC,
  0 at 25 degC).

Not modelled: timing (one ``push_sample`` is one ODR period of every batched sensor),
filters, compression, embedded functions, the interrupt pins.

Serving a read or write allocates nothing, so allocation tests of the driver measure the
driver. Portable: runs in CPython and the MicroPython unix port.
"""

ENODEV = 19

WHO_AM_I_VALUE = 0x6C
FIFO_DEPTH_WORDS = 512

PIN_CTRL = 0x02
FIFO_CTRL1 = 0x07
FIFO_CTRL2 = 0x08
FIFO_CTRL3 = 0x09
FIFO_CTRL4 = 0x0A
INT1_CTRL = 0x0D
INT2_CTRL = 0x0E
WHO_AM_I = 0x0F
CTRL1_XL = 0x10
CTRL2_G = 0x11
CTRL3_C = 0x12
CTRL4_C = 0x13
CTRL5_C = 0x14
CTRL6_C = 0x15
CTRL7_G = 0x16
CTRL8_XL = 0x17
CTRL9_XL = 0x18
CTRL10_C = 0x19
WAKE_UP_SRC = 0x1B
STATUS_REG = 0x1E
OUT_TEMP_L = 0x20
OUTX_L_G = 0x22
OUTX_L_A = 0x28
FIFO_STATUS1 = 0x3A
FIFO_STATUS2 = 0x3B
TAP_CFG0 = 0x56
TAP_CFG1 = 0x57
TAP_CFG2 = 0x58
WAKE_UP_THS = 0x5B
WAKE_UP_DUR = 0x5C
MD1_CFG = 0x5E
FIFO_DATA_OUT_TAG = 0x78
FIFO_DATA_OUT_Z_H = 0x7E

TAG_GYRO_NC = 0x01
TAG_XL_NC = 0x02

# User-writable registers of the register map (r/w), everything else is read-only or
# reserved: FUNC_CFG_ACCESS, PIN_CTRL, S4S_TPH_L/H, S4S_RR, FIFO_CTRL1..4,
# COUNTER_BDR_REG1/2, INT1_CTRL, INT2_CTRL, CTRL1_XL..CTRL10_C, TAP_CFG0..MD2_CFG,
# S4S_ST_CMD_CODE, S4S_DT_REG, I3C_BUS_AVB, UI_INT_OIS, UI_CTRL1..3_OIS, X/Y/Z_OFS_USR.
_WRITABLE_RANGES = (
    (0x01, 0x02),
    (0x04, 0x0E),
    (0x10, 0x19),
    (0x56, 0x62),
    (0x6F, 0x75),
)
_RESET_VALUES = ((PIN_CTRL, 0x3F), (CTRL3_C, 0x04), (CTRL9_XL, 0xE0), (WHO_AM_I, WHO_AM_I_VALUE))

# ODR code -> Hz (CTRL1_XL ODR_XL / CTRL2_G ODR_G / FIFO_CTRL3 BDR_*); 11 is 1.6 Hz for the
# accelerometer (low-power only) and 6.5 Hz as a gyroscope BDR.
_ODR_HZ = (0, 12.5, 26, 52, 104, 208, 416, 833, 1666, 3332, 6664)

_XL_FS_CODE_G = (2, 16, 4, 8)  # FS[1:0]_XL with XL_FS_MODE = 0
_G_FS_CODE_DPS = (250, 500, 1000, 2000)  # FS[1:0]_G with FS_125 = 0
_XL_UG_PER_LSB = {2: 61, 4: 122, 8: 244, 16: 488}
_G_UDPS_PER_LSB = {125: 4375, 250: 8750, 500: 17500, 1000: 35000, 2000: 70000}


def _writable(reg):
    for lo, hi in _WRITABLE_RANGES:
        if lo <= reg <= hi:
            return True
    return False


def _int16(value, per_lsb_micro):
    """Physical value (g or dps) -> raw count with sensitivity per_lsb_micro (ug or udps)."""
    raw = int(round(value * 1000000 / per_lsb_micro))
    return max(-32768, min(32767, raw))


class LSM6DSOXModel:
    def __init__(self, address=0x6A, present=True, fifo_order="GA", reset_busy_reads=2):
        if fifo_order not in ("GA", "AG"):
            raise ValueError("fifo_order is 'GA' or 'AG'")
        self.address = address
        self.present = present
        self.fifo_order = fifo_order
        self.reset_busy_reads = reset_busy_reads
        self.regs = bytearray(128)
        self.fifo = bytearray(7 * FIFO_DEPTH_WORDS)
        self.bad_writes = []
        self.transactions = 0
        self.resets = 0
        self._busy = 0
        self._head = 0
        self._count = 0
        self._slot = 0
        self._ovr_ia = False
        self._ovr_latched = False
        self._held = bytearray(7)
        self._holding = False
        self._word = bytearray(7)
        self._power_on()

    # --- state ---
    def _power_on(self):
        regs = self.regs
        for i in range(128):
            regs[i] = 0
        for reg, value in _RESET_VALUES:
            regs[reg] = value
        self._clear_fifo()

    def _clear_fifo(self):
        self._head = 0
        self._count = 0
        self._slot = 0
        self._ovr_ia = False
        self._ovr_latched = False
        self._holding = False

    # --- decoded configuration (what a test reads back) ---
    def accel_odr_hz(self):
        code = self.regs[CTRL1_XL] >> 4
        if code == 11:
            return 1.6
        return _ODR_HZ[code] if code < len(_ODR_HZ) else None

    def gyro_odr_hz(self):
        code = self.regs[CTRL2_G] >> 4
        return _ODR_HZ[code] if code < len(_ODR_HZ) else None

    def accel_fs_g(self):
        code = (self.regs[CTRL1_XL] >> 2) & 0x03
        if code == 1 and self.regs[CTRL8_XL] & 0x02:  # XL_FS_MODE = 1: no 16 g
            return 2
        return _XL_FS_CODE_G[code]

    def gyro_fs_dps(self):
        if self.regs[CTRL2_G] & 0x02:  # FS_125
            return 125
        return _G_FS_CODE_DPS[(self.regs[CTRL2_G] >> 2) & 0x03]

    def accel_high_performance(self):
        return not self.regs[CTRL6_C] & 0x10  # XL_HM_MODE

    def bdr_xl_hz(self):
        code = self.regs[FIFO_CTRL3] & 0x0F
        return _ODR_HZ[code] if code < len(_ODR_HZ) else None

    def bdr_gy_hz(self):
        code = self.regs[FIFO_CTRL3] >> 4
        return _ODR_HZ[code] if code < len(_ODR_HZ) else None

    def fifo_mode(self):
        return self.regs[FIFO_CTRL4] & 0x07

    def fifo_watermark_words(self):
        return self.regs[FIFO_CTRL1] | (self.regs[FIFO_CTRL2] & 0x01) << 8

    def fifo_level(self):
        return self._count

    def _words_per_slot(self):
        # no list here: this runs inside the driver's (allocation-free) status reads
        xl = 1 if self.regs[FIFO_CTRL3] & 0x0F and self.regs[CTRL1_XL] >> 4 else 0
        gy = 1 if self.regs[FIFO_CTRL3] >> 4 and self.regs[CTRL2_G] >> 4 else 0
        return xl + gy or 1

    def _batched(self):
        """Sensors written per time slot, in FIFO order, as TAG_SENSOR values."""
        xl = self.regs[FIFO_CTRL3] & 0x0F and self.regs[CTRL1_XL] >> 4
        gy = self.regs[FIFO_CTRL3] >> 4 and self.regs[CTRL2_G] >> 4
        order = (TAG_GYRO_NC, TAG_XL_NC) if self.fifo_order == "GA" else (TAG_XL_NC, TAG_GYRO_NC)
        return [t for t in order if (xl if t == TAG_XL_NC else gy)]

    # --- the physical world ---
    def push_sample(self, ax_g, ay_g, az_g, gx_dps, gy_dps, gz_dps, first_only=False):
        """One ODR period: new output registers and, if the FIFO runs, one time slot of
        words. Inputs are in the chip frame, g and dps. ``first_only`` writes only the
        slot's first word and holds the second until ``push_rest()`` (a read that lands
        between the two writes); pushing another sample first drops the held word."""
        ug = _XL_UG_PER_LSB[self.accel_fs_g()]
        udps = _G_UDPS_PER_LSB[self.gyro_fs_dps()]
        a = (_int16(ax_g, ug), _int16(ay_g, ug), _int16(az_g, ug))
        g = (_int16(gx_dps, udps), _int16(gy_dps, udps), _int16(gz_dps, udps))
        regs = self.regs
        for i in range(3):
            regs[OUTX_L_A + 2 * i] = a[i] & 0xFF
            regs[OUTX_L_A + 2 * i + 1] = (a[i] >> 8) & 0xFF
            regs[OUTX_L_G + 2 * i] = g[i] & 0xFF
            regs[OUTX_L_G + 2 * i + 1] = (g[i] >> 8) & 0xFF
        regs[STATUS_REG] |= 0x03  # XLDA | GDA
        self._holding = False
        if self.fifo_mode() == 0:
            return a, g
        sensors = self._batched()
        cnt = self._slot & 0x03
        self._slot += 1
        for k in range(len(sensors)):
            tag = sensors[k]
            v = a if tag == TAG_XL_NC else g
            word = self._held if (first_only and k == 1) else self._word
            t = tag << 3 | cnt << 1
            p = t
            p ^= p >> 4
            p ^= p >> 2
            p ^= p >> 1
            word[0] = t | (p & 1)  # even parity over the whole byte
            for i in range(3):
                word[1 + 2 * i] = v[i] & 0xFF
                word[2 + 2 * i] = (v[i] >> 8) & 0xFF
            if first_only and k == 1:
                self._holding = True
            else:
                self._enqueue(word)
        return a, g

    def push_rest(self):
        """Write the word held back by ``push_sample(..., first_only=True)``."""
        if self._holding:
            self._holding = False
            self._enqueue(self._held)

    def set_temperature(self, celsius):
        raw = int(round((celsius - 25) * 256))
        self.regs[OUT_TEMP_L] = raw & 0xFF
        self.regs[OUT_TEMP_L + 1] = (raw >> 8) & 0xFF

    def _enqueue(self, word):
        if self._count == FIFO_DEPTH_WORDS:
            if self.fifo_mode() == 0b001:  # FIFO mode: stop when full
                return
            self._head = (self._head + 1) % FIFO_DEPTH_WORDS  # continuous: overwrite oldest
            self._count -= 1
            self._ovr_ia = True
            self._ovr_latched = True
        tail = (self._head + self._count) % FIFO_DEPTH_WORDS
        self.fifo[7 * tail : 7 * tail + 7] = word
        self._count += 1

    # --- the bus ---
    def scan(self):
        return [self.address] if self.present else []

    def _check(self, addr):
        if addr != self.address or not self.present:
            raise OSError(ENODEV)
        self.transactions += 1

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        self._check(addr)
        inc = self.regs[CTRL3_C] & 0x04
        reg = memaddr & 0x7F
        for i in range(len(buf)):
            buf[i] = self._read(reg)
            if inc:
                reg = FIFO_DATA_OUT_TAG if reg == FIFO_DATA_OUT_Z_H else (reg + 1) & 0x7F

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self._check(addr)
        reg = memaddr & 0x7F
        for i in range(len(buf)):
            inc = self.regs[CTRL3_C] & 0x04  # a byte may itself change IF_INC
            self._write(reg, buf[i])
            if inc:
                reg = (reg + 1) & 0x7F

    def _read(self, reg):
        if reg == CTRL3_C and self._busy:
            self._busy -= 1
            return self.regs[CTRL3_C] | 0x01
        if reg == FIFO_STATUS1:
            return self._count & 0xFF
        if reg == FIFO_STATUS2:
            return self._status2()
        if FIFO_DATA_OUT_TAG <= reg <= FIFO_DATA_OUT_Z_H:
            if not self._count:
                return 0
            value = self.fifo[7 * self._head + reg - FIFO_DATA_OUT_TAG]
            if reg == FIFO_DATA_OUT_Z_H:  # last byte of the word: consumed
                self._head = (self._head + 1) % FIFO_DEPTH_WORDS
                self._count -= 1
                self._ovr_ia = False
            return value
        return self.regs[reg]

    def _status2(self):
        n = self._count
        value = (n >> 8) & 0x03
        if self._ovr_latched:
            value |= 0x08
            self._ovr_latched = False  # cleared by reading FIFO_STATUS2
        per_slot = self._words_per_slot()
        if self.fifo_mode() and n + per_slot > FIFO_DEPTH_WORDS:
            value |= 0x20  # FIFO_FULL_IA
        if self._ovr_ia:
            value |= 0x40
        wtm = self.fifo_watermark_words()
        if wtm and n >= wtm:
            value |= 0x80
        return value

    def _write(self, reg, value):
        if not _writable(reg):
            self.bad_writes.append(reg)
            return
        if reg == CTRL3_C and value & 0x01:  # SW_RESET
            self.resets += 1
            self._power_on()
            self._busy = self.reset_busy_reads
            return
        self.regs[reg] = value
        if reg == FIFO_CTRL4 and value & 0x07 == 0:  # bypass empties the FIFO
            self._clear_fifo()
