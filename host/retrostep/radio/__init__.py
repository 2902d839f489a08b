"""The simulated radio: the sim board's firmware and the host's BLE code, unmodified, on
a bumble virtual link (docs/simulated-radio.md).

* :class:`SimRadio` / :class:`BackgroundSimRadio`: the link, the sim board's peripheral
  (:mod:`.peripheral_bridge`) and the ways in; ``mp_env()`` for the MicroPython child.
* :class:`BumbleCentral`: a bleak backend on the link (:mod:`.bleak_bumble`).
* :func:`attach_to_running_sim`: the central for ``--sim`` in another process.
"""

from .bleak_bumble import BumbleCentral, SimRadioUnavailable
from .sim_radio import (
    MP_DIR,
    RUNTIME_ENV,
    BackgroundSimRadio,
    SimRadio,
    attach_to_running_sim,
    runtime_file,
)

__all__ = [
    "MP_DIR",
    "RUNTIME_ENV",
    "BackgroundSimRadio",
    "BumbleCentral",
    "SimRadio",
    "SimRadioUnavailable",
    "attach_to_running_sim",
    "runtime_file",
]
