"""retrostep device: hardware glue and the app (IMU driver, haptics, storage, BLE, asyncio).

Only the board HAL imports ``machine`` (and only the BLE module ``bluetooth``); every
other module here takes its bus, pin or radio object as a constructor argument, and
nothing touches hardware at import time.
"""

# The firmware's version: the app's FIRMWARE string, session headers and the flash
# manifest (`retrostep flash` reports it; on the device: import retrostep_device).
VERSION = "0.1.0"
