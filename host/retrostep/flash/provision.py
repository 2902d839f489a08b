"""Device identity: a name and a per-device secret key, set on the first flash.

The key (32 random bytes) will authenticate BLE sync: the device and this computer both
hold it. On the device it lives in ``/device.json`` (outside the firmware slots, so
re-flashing keeps it); on the computer in the user's config directory,
``devices/<device id>.json``, created with mode 0600 in a 0700 directory (a looser mode
found later is tightened, with a warning).

Device id: the chip's unique id where the board has one (``machine.unique_id()``: the
ESP32's factory MAC), else an id generated here and stored on the device with the key
(the virtual board).

Config directory: ``RETROSTEP_CONFIG_DIR`` if set, else
``platformdirs.user_config_dir("retrostep")`` (``~/.config/retrostep`` on Linux).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import ProvisionError

DEVICE_FILE = "/device.json"
RECORD_VERSION = 1
KEY_BYTES = 32


@dataclass(frozen=True)
class Identity:
    device_id: str
    name: str
    key: str  # hex, 2 * KEY_BYTES digits

    def device_json(self) -> bytes:
        """What ``/device.json`` holds (the firmware reads it with ``json``)."""
        return json.dumps({"v": RECORD_VERSION, "id": self.device_id, "name": self.name,
                           "key": self.key}, separators=(",", ":")).encode()  # fmt: skip


@dataclass
class Decision:
    identity: Identity
    write_device: bool  # /device.json must be (re)written
    write_host: bool  # the host record must be (re)written
    note: str  # for the summary


def config_dir() -> Path:
    env = os.environ.get("RETROSTEP_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("retrostep"))


def record_path(device_id: str) -> Path:
    return config_dir() / "devices" / f"{device_id}.json"


def parse_device_file(text: str | None) -> Identity | None:
    """The device's ``/device.json``; None if absent or not a valid record."""
    if not text:
        return None
    try:
        d = json.loads(text)
        ident = Identity(str(d["id"]), str(d["name"]), str(d["key"]))
    except (ValueError, KeyError, TypeError):
        return None
    if len(ident.key) != 2 * KEY_BYTES or not _is_hex(ident.key):
        return None
    return ident


def _is_hex(s: str) -> bool:
    try:
        bytes.fromhex(s)
    except ValueError:
        return False
    return True


def load_record(device_id: str, warn=None, fix: bool = True) -> Identity | None:
    """This computer's record for the device, permissions checked (and, with ``fix``,
    tightened to 0600)."""
    path = record_path(device_id)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if stat.S_IMODE(st.st_mode) & 0o077:
        if fix:
            os.chmod(path, 0o600)
        if warn:
            warn(f"{path} is readable by others" + ("; its mode is now 0600" if fix else ""))
    try:
        d = json.loads(path.read_text())
        return Identity(str(d["id"]), str(d["name"]), str(d["key"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ProvisionError(f"{path} is not a device record ({e}); move it away to "
                             "provision the device again") from e  # fmt: skip


def save_record(ident: Identity, extra: dict | None = None) -> Path:
    """Write the record with mode 0600 (created so, never world-readable in between)."""
    path = record_path(ident.device_id)
    d = path.parent
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(d.stat().st_mode) & 0o077:
        os.chmod(d, 0o700)
    rec = {"v": RECORD_VERSION, "id": ident.device_id, "name": ident.name, "key": ident.key,
           "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to an existing file
        os.write(fd, (json.dumps(rec, indent=1) + "\n").encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def new_identity(device_id: str) -> Identity:
    return Identity(device_id, f"retrostep-{device_id[-4:]}", secrets.token_hex(KEY_BYTES))


def decide(uid: str | None, device_text: str | None, warn=None, fix: bool = True) -> Decision:
    """What to do about the identity, from the board's unique id (None: it has none)
    and its ``/device.json`` text (None: absent). ``fix``: tighten a loose record file
    (not in a dry run)."""
    on_device = parse_device_file(device_text)
    if on_device is not None and uid is not None and on_device.device_id != uid:
        if warn:
            warn(f"the board's {DEVICE_FILE} names another device ({on_device.device_id}); "
                 "provisioning it as itself")  # fmt: skip
        on_device = None
    device_id = uid or (on_device.device_id if on_device else "gen-" + secrets.token_hex(6))
    on_host = load_record(device_id, warn, fix)
    if on_device is None and on_host is None:
        ident = new_identity(device_id)
        return Decision(ident, True, True, f"provisioned as {ident.name} (new key)")
    if on_device is None:
        assert on_host is not None
        return Decision(on_host, True, False,
                        f"{on_host.name}: name and key restored on the device")  # fmt: skip
    if on_host is None:
        return Decision(on_device, False, True,
                        f"{on_device.name}: name and key copied from the device")  # fmt: skip
    if on_host != on_device:
        raise ProvisionError(
            f"the name/key on the device ({on_device.name}) differ from this computer's "
            f"record {record_path(device_id)}: move that file away to take the device's, "
            f"or remove {DEVICE_FILE} from the device to give it this computer's")
    return Decision(on_host, False, False, "provisioned earlier")
