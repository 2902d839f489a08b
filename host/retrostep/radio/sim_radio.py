"""The simulated radio as a whole: one link, the sim board's peripheral on it, and the
ways in for the MicroPython process and for centrals (see docs/simulated-radio.md).

Owner side (the process that runs the sim board)::

    async with SimRadio(publish=True) as radio:        # or BackgroundSimRadio (a thread)
        env = {**os.environ, **radio.mp_env(firmware_path)}
        ... start `micropython` with env ...

Central side, in the same event loop (tests)::

    central = radio.central()                           # a controller on the link itself

Central side, anywhere else (``retrostep scan --sim`` in another terminal)::

    central = attach_to_running_sim()                   # reads the runtime file
    await BleakScanner.find_device_by_filter(f, **central.scanner_kwargs())
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import warnings
from pathlib import Path

from .bleak_bumble import DEFAULT_MTU, BumbleCentral, SimRadioUnavailable
from .link import HciServer, SimLink
from .mp import sim_radio_wire as wire
from .peripheral_bridge import PeripheralBridge

RUNTIME_ENV = "RETROSTEP_SIM_RADIO"  # path of the runtime file, overriding the default
RUNTIME_VERSION = 1
MP_DIR = Path(__file__).resolve().parent / "mp"  # the `bluetooth` stand-in


def runtime_file() -> Path:
    """Where a running sim board publishes its radio: ``$RETROSTEP_SIM_RADIO``, else
    ``radio.json`` in the user's runtime directory."""
    env = os.environ.get(RUNTIME_ENV)
    if env:
        return Path(env)
    import platformdirs

    with warnings.catch_warnings():  # no XDG_RUNTIME_DIR: platformdirs warns, falls back
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir("retrostep")) / "radio.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_runtime_file(path: Path | None = None) -> dict | None:
    """The published radio of a live sim board, or None (no file, unreadable, stale)."""
    path = path or runtime_file()
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("version") != RUNTIME_VERSION:
        return None
    if not isinstance(info.get("pid"), int) or not _pid_alive(info["pid"]):
        return None
    if not isinstance(info.get("hci"), str):
        return None
    return info


class SimRadio:
    """A ``LocalLink``, the sim board's :class:`PeripheralBridge` on it and an
    :class:`HciServer` for centrals in other processes; all bound to 127.0.0.1 and to
    the event loop that runs :meth:`start`.

    ``name`` seeds the board's public address (stable across runs); ``publish`` writes
    the runtime file (True: :func:`runtime_file`, or a path) so that
    :func:`attach_to_running_sim` finds this radio."""

    def __init__(self, *, name: str = "retrostep-sim", address: str | None = None,
                 publish: bool | str | Path = False, host: str = "127.0.0.1") -> None:  # fmt: skip
        self.name = name
        self.link: SimLink | None = None
        self.bridge: PeripheralBridge | None = None
        self.hci_server: HciServer | None = None
        self._address = address
        self._host = host
        self._publish = publish
        self.published: Path | None = None

    async def start(self) -> SimRadio:
        self.link = SimLink()
        self.bridge = PeripheralBridge(self.link, name=self.name, address=self._address,
                                       host=self._host)  # fmt: skip
        await self.bridge.start()
        self.hci_server = HciServer(self.link, host=self._host)
        await self.hci_server.start()
        if self._publish:
            path = runtime_file() if self._publish is True else Path(self._publish)
            try:
                self._write_runtime_file(path)
            except BaseException:
                await self.stop()
                raise
        return self

    async def stop(self) -> None:
        if self.published is not None:
            info = read_runtime_file(self.published)
            if info is not None and info.get("pid") == os.getpid():
                with contextlib.suppress(OSError):
                    self.published.unlink()
            self.published = None
        if self.bridge is not None:
            await self.bridge.stop()
        if self.hci_server is not None:
            await self.hci_server.stop()

    async def __aenter__(self) -> SimRadio:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- for the MicroPython process -----------------------------------------------

    def mp_env(self, micropypath: str | None = None) -> dict[str, str]:
        """Environment for the MicroPython child: ``RETROSTEP_RADIO`` (the bridge) and
        ``MICROPYPATH`` with the ``bluetooth`` stand-in first (after ``.frozen``), then
        ``micropypath`` (e.g. the firmware directory)."""
        assert self.bridge is not None, "start() first"
        parts = [".frozen", str(MP_DIR)]
        if micropypath:
            parts += [p for p in micropypath.split(":") if p and p != ".frozen"]
        return {wire.ENV: self.bridge.env_value, "MICROPYPATH": ":".join(parts)}

    # -- for centrals ----------------------------------------------------------------

    @property
    def hci_spec(self) -> str:
        """bumble transport spec of the HCI server (``tcp-client:127.0.0.1:PORT``)."""
        assert self.hci_server is not None, "start() first"
        return self.hci_server.spec

    def central(self, *, mtu: int = DEFAULT_MTU) -> BumbleCentral:
        """A central on the link itself: only in this radio's event loop."""
        assert self.link is not None, "start() first"
        return BumbleCentral(link=self.link, mtu=mtu)

    def remote_central(self, *, mtu: int = DEFAULT_MTU) -> BumbleCentral:
        """A central through the HCI server: usable from any thread or event loop."""
        return BumbleCentral(hci=self.hci_spec, mtu=mtu)

    def _write_runtime_file(self, path: Path) -> None:
        other = read_runtime_file(path)
        if other is not None and other["pid"] != os.getpid():
            raise SimRadioUnavailable(
                f"another simulated board (pid {other['pid']}) already publishes its radio "
                f"in {path}; stop it, or set {RUNTIME_ENV} to another file"
            )
        assert self.bridge is not None
        info = {
            "version": RUNTIME_VERSION,
            "pid": os.getpid(),
            "board": self.name,
            "address": self.bridge.public_address.to_string(False),
            "hci": self.hci_spec,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, path)
        self.published = path


def attach_to_running_sim(path: str | Path | None = None, *,
                          mtu: int = DEFAULT_MTU) -> BumbleCentral:  # fmt: skip
    """A central on the radio of the sim board running elsewhere (``retrostep sim
    board``), found through its runtime file; :class:`SimRadioUnavailable` if none."""
    where = Path(path) if path is not None else runtime_file()
    info = read_runtime_file(where)
    if info is None:
        raise SimRadioUnavailable(
            f"no simulated board is running (nothing live in {where}); start one with "
            "`retrostep sim board` in another terminal"
        )
    return BumbleCentral(hci=info["hci"], mtu=mtu)


class BackgroundSimRadio:
    """A :class:`SimRadio` on its own event loop in a daemon thread, for owners that are
    not asyncio programs (a pty loop, a test calling the CLI)::

        with BackgroundSimRadio(publish=path) as radio:   # radio is the SimRadio
            env = radio.mp_env(...)
    """

    def __init__(self, **kwargs) -> None:
        self.radio = SimRadio(**kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> SimRadio:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.radio.start())
            except BaseException as e:  # reported to start()'s caller
                failure.append(e)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.radio.stop())
                loop.close()

        self._thread = threading.Thread(target=run, name="retrostep-sim-radio", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise SimRadioUnavailable("the simulated radio did not start")
        if failure:
            raise failure[0]
        return self.radio

    def call(self, coro, timeout: float | None = 30.0):
        """Run a coroutine in the radio's loop (e.g. an in-process central's work)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> SimRadio:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
