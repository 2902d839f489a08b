"""The flasher's pure parts: the board check (ABI, version), the build (mpy-cross for the
ESP32 too), the plan (keep / copy / send), the space estimate and the identity rules."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from retrostep.flash import build as b
from retrostep.flash import plan as p
from retrostep.flash import provision
from retrostep.flash.device import Probe
from retrostep.flash.errors import IncompatibleBoard, NotMicroPython, ProvisionError
from retrostep.flash.flasher import check_board

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
ESP32_MPY = (10 << 10) | (3 << 8) | 6  # sys.implementation._mpy of MicroPython 1.2x on ESP32


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTEP_CONFIG_DIR", str(tmp_path / "config"))


def _probe(**kw) -> Probe:
    d = {"name": "micropython", "version": (1, 29, 0), "mpy": 0xB06, "platform": "linux",
         "machine": "", "bsize": 4096, "blocks": 256, "bfree": 200, "uid": None,
         "state": None, "device": None, "sha256": True, "deflate": True}  # fmt: skip
    d.update(kw)
    return Probe(**d)


# -- the board check -------------------------------------------------------------------


def test_abi_from_sys_implementation():
    assert b.Abi.from_sys_mpy(0xB06) == b.Abi(6, 3, "x64")  # the unix port here
    assert b.Abi.from_sys_mpy(ESP32_MPY) == b.Abi(6, 3, "xtensawin")
    assert b.Abi.from_sys_mpy(6) == b.Abi(6, 0, None)


def test_board_check_refusals():
    assert check_board(_probe(mpy=ESP32_MPY), (6, 3), "p").arch == "xtensawin"
    with pytest.raises(NotMicroPython, match="runs circuitpython, not MicroPython"):
        check_board(_probe(name="circuitpython"), (6, 3), "p")
    with pytest.raises(IncompatibleBoard, match=r"1\.20\.0 on the board is too old.*1\.23"):
        check_board(_probe(version=(1, 20, 0)), (6, 3), "p")
    with pytest.raises(IncompatibleBoard, match="cannot load .mpy files"):
        check_board(_probe(mpy=None), (6, 3), "p")
    with pytest.raises(IncompatibleBoard, match=r"loads \.mpy v6\.2, this mpy-cross emits v6\.3"):
        check_board(_probe(mpy=(10 << 10) | (2 << 8) | 6), (6, 3), "p")
    with pytest.raises(IncompatibleBoard, match="no hashlib.sha256"):
        check_board(_probe(sha256=False), (6, 3), "p")


# -- the build -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def esp32_build(tmp_path_factory) -> b.Build:
    return b.build(FIRMWARE, "xtensawin")


def test_build_for_the_esp32(esp32_build):
    bld = esp32_build
    assert bld.version == b.firmware_version(FIRMWARE)
    assert set(bld.files) == {s.with_suffix(".mpy").as_posix() for s in b.sources(FIRMWARE)}
    native = set()
    for path, f in bld.files.items():
        assert f.data[:2] == b"M\x06", path  # .mpy v6
        # byte 2: 0 for bytecode only (any board); with native code (the gait engine's
        # @micropython.native) the arch (xtensawin: 10) and the sub-version (3)
        assert f.data[2] in (0, (10 << 2) | 3), (path, f.data[2])
        if f.data[2]:
            native.add(path)
    assert {"retrostep_core/steps.mpy", "retrostep_core/pipeline.mpy"} <= native
    assert set(bld.loader) == {"boot.py", "main.py"}
    assert bld.loader["main.py"].data == (FIRMWARE / "main.py").read_bytes()
    assert bld.compiled_size < bld.source_size / 2
    man = bld.manifest()
    assert man["format"] == b.MANIFEST_FORMAT and man["arch"] == "xtensawin"
    assert man["label"] == f"{bld.version}+{bld.build_id}"
    assert all(man["files"][k]["sha256"] == f.sha256 for k, f in bld.files.items())


def test_build_is_reproducible(esp32_build):
    again = b.build(FIRMWARE, "xtensawin")
    assert again.build_id == esp32_build.build_id
    x64 = b.build(FIRMWARE, "x64")
    assert x64.build_id != again.build_id


def test_deflated_round_trip(esp32_build):
    import zlib

    f = esp32_build.files["retrostep_device/app.mpy"]
    z = f.deflated()
    assert len(z) < f.size
    assert zlib.decompressobj(-b.DEFLATE_WBITS).decompress(z) == f.data


# -- the plan --------------------------------------------------------------------------


def _bld(files: dict[str, bytes], loader=None) -> b.Build:
    bld = b.Build("1.0", b.Abi(6, 3, "x64"), "mpy-cross test")
    bld.files = {k: b.FileEntry(k, v, len(v)) for k, v in files.items()}
    loader = loader or {"main.py": b"main", "boot.py": b"boot"}
    bld.loader = {k: b.FileEntry(k, v, len(v)) for k, v in loader.items()}
    return bld


def _listing(files: dict[str, bytes]) -> p.Listing:
    return p.Listing({k: (len(v), b.FileEntry(k, v, 0).sha256) for k, v in files.items()})


def test_plan_first_install():
    bld = _bld({"pkg/a.mpy": b"A", "pkg/b.mpy": b"B"})
    plan = p.make_plan(bld, None, {}, p.Listing())
    assert plan.target == "a" and plan.active is None
    assert plan.paths(p.SEND) == ["pkg/a.mpy", "pkg/b.mpy"]
    assert plan.loader == ["main.py", "boot.py"] and not plan.up_to_date


def test_plan_keeps_copies_sends_and_removes():
    bld = _bld({"x.mpy": b"new", "y.mpy": b"same", "z.mpy": b"arrived"})
    slots = {
        "a": _listing({"x.mpy": b"old", "y.mpy": b"same", "manifest.json": b"{}"}),
        "b": _listing({"z.mpy": b"arrived", "stale.mpy": b"s", "x.mpy.z": b"cut"}),
    }
    root = _listing({"main.py": b"main", "boot.py": b"old boot"})
    plan = p.make_plan(bld, {"active": "a", "version": "1.0+old"}, slots, root)
    assert plan.target == "b"
    assert plan.actions == {"x.mpy": p.SEND, "y.mpy": p.COPY, "z.mpy": p.KEEP}
    assert plan.remove == ["stale.mpy", "x.mpy.z"]
    assert plan.loader == ["boot.py"]
    full = p.make_plan(bld, {"active": "a"}, slots, root, full=True)
    assert full.paths(p.SEND) == ["x.mpy", "y.mpy", "z.mpy"] and full.loader == ["main.py",
                                                                                  "boot.py"]


def test_plan_up_to_date_only_when_confirmed():
    bld = _bld({"x.mpy": b"x"})
    slots = {"a": _listing({"x.mpy": b"x", "manifest.json": b"{}"})}
    root = _listing({"main.py": b"main", "boot.py": b"boot"})
    st = {"active": "a", "version": bld.label, "trial": False}
    assert p.make_plan(bld, st, slots, root).up_to_date
    assert not p.make_plan(bld, dict(st, trial=True), slots, root).up_to_date
    assert not p.make_plan(bld, st, slots, root, full=True).up_to_date
    assert not p.make_plan(bld, dict(st, version="other"), slots, root).up_to_date


def test_space_estimate():
    bld = _bld({"d/x.mpy": b"x" * 5000, "d/y.mpy": b"y" * 100})
    slots = {"b": _listing({"d/old.mpy": b"o" * 9000, "manifest.json": b"{}"})}
    plan = p.make_plan(bld, {"active": "a"}, slots, _listing({}))
    need, freed = p.space_needed(bld, plan, slots, 4096)
    # x: 2 blocks, y: 1, manifest 1, two directories' metadata pairs 4, margin 4, loader 2
    assert need == 2 + 1 + 1 + 4 + p.MARGIN_BLOCKS + 2
    assert freed == 3 + 1  # the stale module and the old manifest


# -- identity --------------------------------------------------------------------------


def test_first_provisioning_and_record_permissions(tmp_path):
    d = provision.decide(None, None)
    assert d.write_device and d.write_host
    ident = d.identity
    assert ident.device_id.startswith("gen-") and ident.name == "retrostep-" + ident.device_id[-4:]
    assert len(bytes.fromhex(ident.key)) == 32
    path = provision.save_record(ident)
    assert path.parent == tmp_path / "config" / "devices"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["key"] == ident.key
    on_board = json.loads(ident.device_json())
    assert provision.parse_device_file(json.dumps(on_board)) == ident


def test_chip_id_restores_the_device_file():
    uid = "a4cf12345678"
    first = provision.decide(uid, None)
    assert first.identity.device_id == uid and first.identity.name == "retrostep-5678"
    provision.save_record(first.identity)
    again = provision.decide(uid, None)  # the board's flash was erased
    assert again.identity == first.identity and again.write_device and not again.write_host
    same = provision.decide(uid, first.identity.device_json().decode())
    assert not same.write_device and not same.write_host


def test_device_file_of_another_board_is_not_taken(monkeypatch):
    other = provision.new_identity("0000deadbeef")
    warnings: list[str] = []
    d = provision.decide("a4cf12345678", other.device_json().decode(), warnings.append)
    assert d.identity.device_id == "a4cf12345678" and d.identity.key != other.key
    assert any("names another device" in w for w in warnings)


def test_mismatch_is_refused():
    uid = "a4cf12345678"
    mine = provision.new_identity(uid)
    provision.save_record(mine)
    theirs = provision.Identity(uid, mine.name, "11" * 32)
    with pytest.raises(ProvisionError, match="differ from this computer's record"):
        provision.decide(uid, theirs.device_json().decode())


def test_invalid_device_files_are_ignored():
    for text in ("", "{", json.dumps({"id": "x"}), json.dumps({"id": "x", "name": "n",
                                                               "key": "zz" * 32})):  # fmt: skip
        assert provision.parse_device_file(text) is None


def test_existing_loose_record_file_is_rewritten_0600():
    ident = provision.new_identity("gen-000000000001")
    path = provision.record_path(ident.device_id)
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    os.chmod(path, 0o644)
    os.chmod(path.parent, 0o755)
    provision.save_record(ident)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_device_file_is_what_the_ble_service_reads(tmp_path):
    """/device.json as the flasher writes it is what the firmware's BLE service loads
    (its id at most 16 bytes, the key 32)."""
    from retrostep_device.ble_service import load_identity

    for ident in (provision.decide(None, None).identity,  # generated id: "gen-" + 12 hex
                  provision.new_identity("a4cf12345678")):  # an ESP32 chip id  # fmt: skip
        path = tmp_path / "device.json"
        path.write_bytes(ident.device_json())
        dev, name, key = load_identity(str(path))
        assert dev == ident.device_id.encode() and name == ident.name
        assert key == bytes.fromhex(ident.key)
