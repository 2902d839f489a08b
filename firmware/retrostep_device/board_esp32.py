"""The real board's HAL: XIAO ESP32-S3 with an LSM6DSOX, a vibration motor, one button
and a battery divider (``hardware/wiring.md`` has the pins). The only module that
imports ``machine``; hardware is set up in :meth:`Board.start`, never at import.

Same interface as :mod:`board_sim`. The IMU batches through its FIFO (watermark of
half a second, INT1 rising when it is reached); between batches the app's await lets
the board light-sleep (``machine.lightsleep`` from the idle path is left to the
asyncio scheduler; see ``hardware/power.md``). After the idle timeout the board arms
wake-on-motion and the button as deep-sleep wake sources and goes to deep sleep: the
next wake is a reset, and the app starts again from ``main.py``.
"""

import asyncio
import time

import esp32
import machine

from .lsm6dsox import ADDR_SA0_HIGH, ADDR_SA0_LOW, LSM6DSOX, LSM6DSOXError

PIN_IMU_INT1 = 1  # D0, RTC GPIO: ext1 wake
PIN_BUTTON = 2  # D1, active low, RTC GPIO: ext0 wake
PIN_MOTOR = 4  # D3, LEDC PWM to the MOSFET gate
PIN_SDA = 5  # D4
PIN_SCL = 6  # D5
PIN_VBAT = 7  # D8, ADC1_CH6 behind a 1:2 divider
I2C_HZ = 400000
MOTOR_PWM_HZ = 20000
DEBOUNCE_MS = 30
WAKE_MOTION_MG = 120
WDT_MS = 8000
BATCH = 26
WALL_VALID = 788918400  # 2025-01-01 in seconds since 2000: an RTC before it was never set
LIGHT_SLEEP_MARGIN_MS = 60  # wake this long before the FIFO watermark is due


class Board:
    name = "esp32"
    fs_root = ""  # the LittleFS partition is the root filesystem: /config.bin, /logs

    def __init__(self):
        self.imu = None
        self._t0 = time.ticks_ms()
        self._elapsed = 0  # ms since start, kept past the ticks wrap
        self._last = self._t0
        self._flag = asyncio.ThreadSafeFlag()
        self._press = False
        self._press_t = self._t0
        self._pwm = None
        self._adc = None
        self._wdt = None
        self._button = None
        self._int1 = None
        self._duty = 0
        self._batch_ms = 500

    # -- lifecycle ---------------------------------------------------------------------

    def start(self):
        i2c = machine.I2C(0, scl=machine.Pin(PIN_SCL), sda=machine.Pin(PIN_SDA), freq=I2C_HZ)
        self._i2c = i2c
        self._button = machine.Pin(PIN_BUTTON, machine.Pin.IN, machine.Pin.PULL_UP)
        self._button.irq(self._on_button, machine.Pin.IRQ_FALLING)
        self._int1 = machine.Pin(PIN_IMU_INT1, machine.Pin.IN)
        self._int1.irq(self._on_int1, machine.Pin.IRQ_RISING)
        self._pwm = machine.PWM(machine.Pin(PIN_MOTOR), freq=MOTOR_PWM_HZ, duty_u16=0)
        self._adc = machine.ADC(machine.Pin(PIN_VBAT), atten=machine.ADC.ATTN_11DB)
        self._wdt = machine.WDT(timeout=WDT_MS)

    def _open_imu(self, odr_hz):
        for addr in (ADDR_SA0_LOW, ADDR_SA0_HIGH):
            try:
                return LSM6DSOX(self._i2c, addr, odr_hz=odr_hz)
            except LSM6DSOXError:
                pass
        raise LSM6DSOXError(19, "LSM6DSOX not found at 0x6A or 0x6B")

    def stop(self):
        self.motor(0)

    # -- IRQs: copy, flag, return ------------------------------------------------------

    def _on_int1(self, pin):
        self._flag.set()

    def _on_button(self, pin):
        t = time.ticks_ms()
        if time.ticks_diff(t, self._press_t) > DEBOUNCE_MS:
            self._press_t = t
            self._press = True

    # -- clock -------------------------------------------------------------------------

    def now_ms(self):
        t = time.ticks_ms()
        self._elapsed += time.ticks_diff(t, self._last)
        self._last = t
        return self._elapsed

    def wall_time(self):
        """Seconds since 2000-01-01 UTC from the RTC (the ESP32 port's epoch), 0 while it
        has never been set (it counts from 2000 after a cold start)."""
        t = time.time()
        return t if t >= WALL_VALID else 0

    def set_wall_time(self, seconds):
        """Set the RTC (the host does on sync); it keeps counting through deep sleep."""
        y, mo, d, h, mi, s, wd, _ = time.gmtime(seconds)
        machine.RTC().datetime((y, mo, d, wd, h, mi, s, 0))

    # -- IMU ---------------------------------------------------------------------------

    def imu_rate_hz(self, wanted_hz):
        self.imu = self._open_imu(wanted_hz)
        self.imu.route_int1(fifo_threshold=True)
        self.imu.start_fifo(BATCH)
        self._batch_ms = int(BATCH * 1000 / self.imu.odr_hz)
        return self.imu.odr_hz

    async def read_batch(self, buf):
        """Wait for the FIFO watermark, read what is there (0 is never returned)."""
        imu = self.imu
        if imu is None:
            raise OSError(19, "imu_rate_hz() was not called")
        while True:
            if imu.fifo_level() < 2 * BATCH:
                if not self._duty:
                    # Nothing to do until the watermark: light-sleep most of the way (the
                    # loop is blocked, which is fine with the motor off), then wait for INT1.
                    machine.lightsleep(self._batch_ms - LIGHT_SLEEP_MARGIN_MS)
                await self._flag.wait()
            n = imu.read_fifo(buf, len(buf) // 6)
            if n:
                return n

    # -- motor, button, battery --------------------------------------------------------

    def motor(self, duty, t_ms=None):
        self._duty = duty
        if self._pwm is not None:
            self._pwm.duty_u16(duty * 65535 // 100)

    def button_pressed(self):
        """Time (ms, ``now_ms`` clock) of a debounced press since the last call, or None."""
        if not self._press:
            return None
        self._press = False
        return self.now_ms() - time.ticks_diff(time.ticks_ms(), self._press_t)

    def battery_mv(self):
        if self._adc is None:
            return 0
        return 2 * self._adc.read_uv() // 1000  # 1 M / 1 M divider

    # -- power -------------------------------------------------------------------------

    def set_power(self, state):
        pass

    def deep_sleep(self):
        """Arm wake-on-motion (INT1, ext1) and the button (ext0); never returns."""
        self.motor(0)
        imu = self.imu
        if imu is not None:
            imu.stop_fifo()
            imu.low_power()
            imu.wake_on_motion(WAKE_MOTION_MG)
        esp32.wake_on_ext0(machine.Pin(PIN_BUTTON), esp32.WAKEUP_ALL_LOW)
        esp32.wake_on_ext1((machine.Pin(PIN_IMU_INT1),), esp32.WAKEUP_ANY_HIGH)
        machine.deepsleep()

    def feed_watchdog(self):
        if self._wdt is not None:
            self._wdt.feed()
