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
    mark them in a scan, where only the advertised name is known): the name given at
    provisioning, and the names the device was later seen advertising when it proved
    it holds the key (:func:`remember_name`; a device renamed with ``config set``)."""
    out: dict[str, str] = {}
    d = provision.config_dir() / "devices"
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            rec = json.loads(p.read_text())
            out[str(rec["name"])] = str(rec["id"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for name in _seen(p.with_suffix(".names")):
            out.setdefault(name, str(rec["id"]))
    return out


def _seen(path) -> list[str]:
    try:
        names = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def remember_name(device_id: bytes, name: str) -> None:
    """Keep ``name`` as a name this device goes by (after it authenticated). Best
    effort: a scan's "key" column is a convenience, a sync never depends on it."""
    did = device_id.decode("ascii", "replace")
    path = provision.record_path(did).with_suffix(".names")
    names = _seen(path)
    if not name or name in names or not path.parent.is_dir():
        return
    tmp = path.with_suffix(".names.tmp")
    try:
        tmp.write_text(json.dumps([*names, name]))
        tmp.replace(path)
    except OSError:
        pass
