from binascii import crc32 as ref_crc32

from retrostep_core import config as c
from retrostep_core.pipeline import GaitPipeline


def _with(**changes):
    cfg = c.defaults()
    for k in changes:
        cfg[k] = changes[k]
    return cfg


def _coaching():
    return _with(
        sway_limit_deg=12.5,
        sway_min_ms=250,
        sway_refractory_ms=5000,
        sample_rate_hz=104,
        idle_timeout_s=600,
        haptic_strength=35,
        program=[("forward", 300), ("backward", 60), ("rest", 30)],
        program_repeat=4,
        device_name="Anna's clip",
    )


def test_defaults_are_valid_and_the_pipeline_accepts_them():
    d = c.defaults()
    assert c.validate(d) == []
    assert d["sway_limit_deg"] == 10 and d["sample_rate_hz"] == 52 and d["program"] == []
    GaitPipeline(d["sample_rate_hz"], d["sway_limit_deg"], d["sway_min_ms"],
                 d["sway_refractory_ms"])  # fmt: skip
    d["program"].append(("forward", 60))
    assert c.defaults()["program"] == []  # a fresh dict each time


def test_golden_encoding_of_the_defaults():
    # magic RSCF, version 01, limit 1000 e803, min 200 c800, refractory 3000 b80b,
    # 52 Hz 34, idle 300 2c01, haptic 80 50, repeat 01, 0 intervals 00,
    # name length 09 "retrostep", then CRC-32 of all of it.
    body = bytes.fromhex(
        "52534346" "01" "e803" "c800" "b80b" "34" "2c01" "50" "01" "00" "09"
    ) + b"retrostep"  # fmt: skip
    crc = bytes.fromhex("28f3fe2d")
    assert ref_crc32(body).to_bytes(4, "little") == crc
    assert c.encode(c.defaults()) == body + crc
    assert c.config_crc(c.defaults()) == int.from_bytes(crc, "little")


def test_round_trip():
    for cfg in (c.defaults(), _coaching(), _with(sway_limit_deg=3, program_repeat=99)):
        data = c.encode(cfg)
        got, problems = c.decode(data)
        assert problems == [], problems
        assert got == cfg
        assert c.encode(got) == data
    data = c.encode(_coaching())
    assert len(data) == 22 + 3 * 3 + len("Anna's clip")
    # JSON-shaped input (lists, not tuples) encodes the same
    j = _coaching()
    j["program"] = [list(i) for i in j["program"]]
    assert c.encode(j) == data


def test_crc_follows_every_field():
    seen = set()
    for cfg in (c.defaults(), _with(haptic_strength=81), _with(device_name="retrostep2"),
                _with(program=[("rest", 10)]), _with(sway_limit_deg=10.01)):  # fmt: skip
        seen.add(c.config_crc(cfg))
    assert len(seen) == 5


def test_each_invalid_field_is_rejected_by_name():
    bad = {
        "sway_limit_deg": [2.9, 31, "10", None, True],
        "sway_min_ms": [-1, 2001, 200.0],
        "sway_refractory_ms": [-1, 60001],
        "sample_rate_hz": [25, 50, 100, 200, 52.0],
        "idle_timeout_s": [29, 3601],
        "haptic_strength": [-1, 101],
        "program": [
            "forward",
            [("forward", 9)],
            [("forward", 3601)],
            [("sideways", 60)],
            [("forward",)],
            [(["forward"], 60)],
            [("rest", 60)] * 17,
        ],
        "program_repeat": [0, 100],
        "device_name": ["", "x" * 17, "caf\u00e9", "a\nb", 7],
    }
    for name in bad:
        for value in bad[name]:
            problems = c.validate(_with(**{name: value}))
            assert len(problems) == 1 and problems[0].startswith(name + ":"), (name, value)
            try:
                c.encode(_with(**{name: value}))
            except ValueError as e:
                assert name in str(e)
            else:
                raise AssertionError("encode accepted %s=%r" % (name, value))


def test_missing_and_unknown_fields_are_problems():
    cfg = c.defaults()
    del cfg["haptic_strength"]
    cfg["colour"] = "red"
    assert c.validate(cfg) == ["haptic_strength: missing", "colour: unknown field"]
    assert c.validate([1, 2]) != [] and c.validate(None) != []


def _expect_defaults(data, word):
    cfg, problems = c.decode(data)
    assert cfg == c.defaults(), (data, cfg)
    assert len(problems) == 1 and word in problems[0], (word, problems)


def test_corrupt_bytes_give_defaults_and_a_problem():
    good = c.encode(_coaching())
    _expect_defaults(b"", "short")
    _expect_defaults(good[:10], "short")
    _expect_defaults(b"XXXX" + good[4:], "magic")
    for i in range(4, len(good)):  # any flipped byte after the magic
        bad = bytearray(good)
        bad[i] ^= 0x10
        _expect_defaults(bytes(bad), "CRC")
    _expect_defaults(good[:-5] + good[-4:], "CRC")  # a byte lost
    _expect_defaults(bytes(200), "magic")
    _expect_defaults(b"\xff" * 50, "magic")


def test_bad_input_types_never_raise():
    for data in (None, "RSCF", 12, [1, 2, 3]):
        cfg, problems = c.decode(data)
        assert cfg == c.defaults() and len(problems) == 1


def _reseal(body):
    return body + ref_crc32(body).to_bytes(4, "little")


def test_unknown_version_gives_defaults_and_a_problem():
    body = bytearray(c.encode(_coaching())[:-4])
    body[4] = c.CONFIG_VERSION + 1
    _expect_defaults(_reseal(bytes(body)), "version")


def test_well_formed_but_inconsistent_lengths_give_defaults():
    good = c.encode(c.defaults())[:-4]
    bad = bytearray(good)
    bad[16] = 17  # more intervals than allowed
    _expect_defaults(_reseal(bytes(bad)), "interval")
    bad = bytearray(good)
    bad[17] = 30  # name longer than the data
    _expect_defaults(_reseal(bytes(bad)), "name")
    bad = bytearray(good)
    bad[18] = 0x07  # a control character in the name
    _expect_defaults(_reseal(bytes(bad)), "name")


def test_an_invalid_value_takes_its_default_and_keeps_the_rest():
    # A config written by a newer host that allows a 35 degree limit and a 5th kind.
    body = bytearray(c.encode(_coaching())[:-4])
    body[5:7] = (3500).to_bytes(2, "little")
    body[17] = 5  # first interval's kind
    cfg, problems = c.decode(_reseal(bytes(body)))
    assert len(problems) == 2, problems
    assert problems[0].startswith("sway_limit_deg:") and problems[1].startswith("program:")
    want = _coaching()
    want["sway_limit_deg"] = 10
    want["program"] = []
    assert cfg == want
