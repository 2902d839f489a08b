"""The host's device keys as the sync commands see them: a device is marked "known" in
a scan by the name it was provisioned with, and also by a name it later advertised
while proving it holds the key (renamed with `config set device_name=...`)."""

from __future__ import annotations

import pytest

from retrostep.flash import provision
from retrostep.sync import keys
from retrostep.sync.errors import AuthError


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTEP_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def test_known_names_follow_a_renamed_device(config_dir):
    ident = provision.new_identity("gen-0123456789ab")
    provision.save_record(ident)
    did = ident.device_id.encode()
    assert keys.known_names() == {ident.name: ident.device_id}
    assert keys.key_for(did) == bytes.fromhex(ident.key)
    keys.remember_name(did, "kitchen-walker")
    keys.remember_name(did, "kitchen-walker")  # once is enough
    assert keys.known_names() == {ident.name: ident.device_id, "kitchen-walker": ident.device_id}
    assert provision.record_path(ident.device_id).with_suffix(".names").read_text().count(
        "kitchen-walker") == 1


def test_no_record_no_key_and_nothing_remembered(config_dir):
    with pytest.raises(AuthError, match="not provisioned on this computer"):
        keys.key_for(b"gen-ffffffffffff", "stranger")
    keys.remember_name(b"gen-ffffffffffff", "stranger")  # no devices dir: nothing written
    assert keys.known_names() == {}
    assert not config_dir.exists()
