"""This computer's keys for its devices: the records ``retrostep flash`` writes
(``<config dir>/devices/<device id>.json``, :mod:`retrostep.flash.provision`)."""

from __future__ import annotations

import json

from ..flash import provision
from .errors import AuthError


def key_for(device_id: bytes, name: str = "") -> bytes:
    """The 32-byte key for the device with this id (as INFO reports it); AuthError with
    what to do if this computer has none."""
    did = device_id.decode("ascii", "replace")
    ident = provision.load_record(did)
    who = f"{name} ({did})" if name and name != did else did
    if ident is None:
        raise AuthError(f"device {who} is not provisioned on this computer "
                        f"(no {provision.record_path(did)}): run `retrostep flash` "
                        "with the device connected by USB")  # fmt: skip
    try:
        key = bytes.fromhex(ident.key)
    except ValueError:
        key = b""
    if len(key) != provision.KEY_BYTES:
        raise AuthError(f"{provision.record_path(did)} holds no usable key; move it away "
                        "and run `retrostep flash` again")  # fmt: skip
    return key


def known_names() -> dict[str, str]:
    """``{device name: device id}`` of every device this computer has a key for (to
    mark them in a scan, where only the advertised name is known)."""
    out: dict[str, str] = {}
    d = provision.config_dir() / "devices"
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            rec = json.loads(p.read_text())
            out[str(rec["name"])] = str(rec["id"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out
