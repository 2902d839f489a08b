"""The gait synthesizer: determinism, ground truth, and the physics it must respect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt
from scipy.spatial.transform import Rotation

from retrostep import synth
from retrostep.trace import read_trace, read_truth

G = 9.80665


def _walk(direction: str, duration: float = 30.0, **extra) -> list[dict]:
    return [
        {"activity": "stand", "duration": 3.0},
        {"activity": "walk", "direction": direction, "duration": duration, **extra},
        {"activity": "stand", "duration": 3.0},
    ]


def _bandpass(x: np.ndarray, fs: float, lo: float = 0.5, hi: float = 3.0) -> np.ndarray:
    sos = butter(2, [lo, hi], btype="bandpass", fs=fs, output="sos")
    return sosfiltfilt(sos, x, axis=0)


def _angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    c = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return math.degrees(math.acos(np.clip(c, -1.0, 1.0)))


def test_deterministic_for_a_seed():
    person = synth.make_person(5, kind="older")
    segs = _walk("backward", 15.0) + [{"activity": "fidget", "duration": 8.0}]
    a_trace, a_truth = synth.synthesize(segs, person, fs_hz=52, seed=3)
    b_trace, b_truth = synth.synthesize(segs, synth.make_person(5, kind="older"), fs_hz=52, seed=3)
    np.testing.assert_array_equal(a_trace.imu, b_trace.imu)
    assert a_truth.steps == b_truth.steps
    assert a_truth.segments == b_truth.segments
    c_trace, _ = synth.synthesize(segs, person, fs_hz=52, seed=4)
    assert not np.allclose(a_trace.imu, c_trace.imu)


def test_persons_differ_by_seed_and_kind():
    a, b = synth.make_person(1), synth.make_person(2)
    assert a.cadence_fwd != b.cadence_fwd
    rehab = synth.make_person(1, kind="rehab")
    assert rehab.cadence_fwd < a.cadence_fwd and rehab.cv_bwd > a.cv_fwd
    with pytest.raises(ValueError):
        synth.make_person(1, kind="athlete")


def test_truth_steps_match_phase_cycles():
    person = synth.make_person(7)
    segs = _walk("forward", 20.0) + [
        {"activity": "walk", "direction": "backward", "duration": 15.0},
        {"activity": "turn_in_place", "angle_deg": 90, "steps": 3},
        {"activity": "stand", "duration": 2.0},
    ]
    motion = synth.simulate_motion(segs, person, seed=1)
    assert len(motion.bouts) == 3
    total = 0
    for bout in motion.bouts:
        n = len(bout.ics)
        active = synth._bout_envelope(bout.phase, n) > 0  # where the bout moves the body
        ph = bout.phase[active]
        crossed = np.arange(math.ceil(ph.min()), math.floor(ph.max()) + 1)
        assert len(crossed) == n  # one IC per integer phase
        t = motion.t[bout.i0 : bout.i0 + len(bout.phase)]
        np.testing.assert_allclose(np.interp(crossed, bout.phase, t), bout.ics, atol=1e-3)
        total += n
    assert total == len(motion.steps)
    times = [s.t for s in motion.steps]
    assert times == sorted(times)
    assert motion.bouts[-1].activity == "turn_in_place"
    assert [s.direction for s in motion.steps if s.t > 41.0] == ["forward"] * 3


def test_step_count_follows_cadence():
    person = synth.make_person(3)
    _, truth = synth.synthesize(_walk("forward", 60.0, cadence=110), person, seed=2)
    assert abs(len(truth.steps) - 110.0) <= 4
    assert all(s.direction == "forward" for s in truth.steps)


def test_rest_gravity_magnitude_and_gyro_bias():
    person = synth.make_person(4)
    trace, truth = synth.synthesize([{"activity": "stand", "duration": 20.0}], person, seed=9)
    assert truth.steps == []
    mag = np.linalg.norm(trace.imu[:, :3], axis=1)
    assert abs(mag.mean() - G) < 0.25
    bias = np.array([float(x) for x in trace.meta["gyro_bias"].split(",")])
    np.testing.assert_allclose(trace.imu[:, 3:].mean(axis=0), bias, atol=0.004)
    assert np.abs(trace.imu[:, 3:] - bias).std() < 0.02


@pytest.mark.parametrize("tilt", [20.0, 45.0])
def test_mount_tilt_sets_gravity_angle(tilt):
    person = synth.make_person(6)
    segs = [{"activity": "stand", "duration": 10.0}]
    flat, _ = synth.synthesize(segs, person, seed=1, noise=False)
    tilted, _ = synth.synthesize(segs, person, seed=1, noise=False, mount_tilt_deg=tilt)
    g_flat = flat.imu[:, :3].mean(axis=0)
    g_tilt = tilted.imu[:, :3].mean(axis=0)
    # The angle between the two gravity directions is exactly the mounting tilt...
    assert _angle_deg(g_flat, g_tilt) == pytest.approx(tilt, abs=0.3)
    # ...and with the wearer's small posture offset, gravity makes ~tilt with sensor z.
    assert _angle_deg(g_tilt, np.array([0.0, 0.0, 1.0])) == pytest.approx(tilt, abs=5.0)
    assert g_tilt[0] < 0  # nose down: +x points partly downwards
    rolled, _ = synth.synthesize(segs, person, seed=1, noise=False, mount_roll_deg=tilt)
    assert _angle_deg(g_flat, rolled.imu[:, :3].mean(axis=0)) == pytest.approx(tilt, abs=0.3)


def test_backward_cadence_lower_than_forward():
    for kind, seed in (("adult", 1), ("older", 2), ("rehab", 3)):
        person = synth.make_person(seed, kind=kind)
        cad = {}
        for direction in ("forward", "backward"):
            trace, truth = synth.synthesize(_walk(direction), person, seed=5)
            cad[direction] = 60.0 / np.median(np.diff([s.t for s in truth.steps]))
            # The signal agrees: dominant vertical frequency is the step frequency.
            sel = (trace.t > 5) & (trace.t < 31)
            az = trace.imu[sel, 2] - trace.imu[sel, 2].mean()
            f = np.fft.rfftfreq(len(az), 1.0 / trace.fs_hz)
            band = (f > 0.6) & (f < 3.0)
            f_peak = f[band][np.argmax(np.abs(np.fft.rfft(az))[band])]
            assert f_peak * 60.0 == pytest.approx(cad[direction], rel=0.08)
        assert cad["backward"] < 0.95 * cad["forward"]


@pytest.mark.parametrize("side, sign", [("left", -1.0), ("right", 1.0)])
def test_sway_episode_tilts_gravity(side, sign):
    person = synth.make_person(8)
    sway = {"at": 10.0, "peak_deg": 15.0, "side": side, "duration": 3.0, "rise_s": 0.5}
    segs = _walk("forward", 25.0, sway=[{**sway, "fall_s": 0.5}])
    trace, truth = synth.synthesize(segs, person, seed=4)
    (ep,) = truth.sway_episodes
    assert (ep.start, ep.end, ep.side, ep.peak_deg) == (13.0, 16.0, side, 15.0)
    assert ep.t_over_limit == pytest.approx(13.0 + 0.5 / math.pi * math.acos(1 - 20 / 15))
    t, a = trace.t, trace.imu
    roll = np.degrees(np.arctan2(a[:, 1], a[:, 2]))  # gravity roll angle from the signal
    plateau = (t > 13.6) & (t < 15.4)
    base = ((t > 7) & (t < 12)) | ((t > 17) & (t < 22))
    assert roll[plateau].mean() - roll[base].mean() == pytest.approx(sign * 15.0, abs=2.5)
    # The gyro sees the lean too: the roll rate over the rise (mean 0.52 rad/s).
    rise = (t > 13.0) & (t < 13.5)
    assert sign * a[rise, 3].mean() > 0.25


def test_gyro_and_gravity_are_consistent():
    """Integrating the gyro predicts how gravity turns in the sensor frame (sitting down)."""
    person = synth.make_person(9)
    segs = [{"activity": "stand", "duration": 3.0}, {"activity": "sit", "duration": 14.0}]
    trace, truth = synth.synthesize(
        segs, person, fs_hz=200, seed=2, noise=False, mount_tilt_deg=20, mount_yaw_deg=15
    )
    sit = next(s for s in truth.segments if s["activity"] == "sit")
    t_mid = 0.5 * (sit["start"] + sit["end"])
    t, a, w = trace.t, trace.imu[:, :3], trace.imu[:, 3:]
    g0 = a[(t > 1.0) & (t < 2.0)].mean(axis=0)
    g1 = a[np.abs(t - t_mid) < 0.5].mean(axis=0)
    rot = Rotation.identity()
    for k in np.flatnonzero((t >= 1.5) & (t < t_mid)):
        rot = rot * Rotation.from_rotvec(w[k] / trace.fs_hz)
    predicted = rot.inv().apply(g0)
    assert _angle_deg(g0, g1) > 8.0  # the pelvis really reclined
    assert _angle_deg(predicted, g1) < 1.5


def test_non_walking_case_has_zero_steps():
    trace, truth = synth.make_case("nonwalk_sit_fidget_A5")
    assert truth.steps == []
    acts = {s["activity"] for s in truth.segments}
    assert {"sit_down", "sit", "stand_up", "fidget", "stand"} <= acts
    # There is real trunk motion: pitch changes of tens of degrees (sitting, bending).
    assert np.ptp(trace.imu[:, 4]) > 0.5


@pytest.mark.parametrize("seed, kind", [(1, "adult"), (2, "older"), (3, "rehab")])
def test_inverted_pendulum_signature(seed, kind):
    """Forward: fastest forward when lowest (v_ap and a_v correlate +); backward: -."""
    person = synth.make_person(seed, kind=kind)
    corr = {}
    for direction in ("forward", "backward"):
        trace, _ = synth.synthesize(_walk(direction, 40.0), person, seed=6)
        fs, t = trace.fs_hz, trace.t
        a_ap = _bandpass(trace.imu[:, 0], fs)
        v = np.cumsum(a_ap) / fs
        v = _bandpass(v - np.polyval(np.polyfit(t, v, 1), t), fs)
        a_v = _bandpass(trace.imu[:, 2], fs)
        sel = (t > 6) & (t < 40)
        corr[direction] = np.corrcoef(v[sel], a_v[sel])[0, 1]
    assert corr["forward"] > 0.3
    assert corr["backward"] < -0.3


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_contact_shortly_before_vertical_peak(direction):
    person = synth.make_person(12)
    trace, truth = synth.synthesize(_walk(direction, 40.0), person, seed=2, noise=False)
    fs = trace.fs_hz
    av = _bandpass(trace.imu[:, 2], fs, 0.5, 6.0)
    ics = np.array([s.t for s in truth.steps])
    lags = []
    for k in range(2, len(ics) - 2):
        d = ics[k + 1] - ics[k]
        i0, i1 = int((ics[k] - 0.25 * d) * fs), int((ics[k] + 0.75 * d) * fs)
        lags.append((trace.t[i0 + np.argmax(av[i0:i1])] - ics[k]) / d)
    assert 0.0 < np.median(lags) < 0.25


@pytest.mark.parametrize("fs", [25.0, 52.0, 104.0, 200.0])
def test_sample_rates_and_meta(fs):
    person = synth.make_person(2)
    trace, truth = synth.synthesize(
        _walk("forward", 6.0), person, fs_hz=fs, seed=1, mount_tilt_deg=30, mount_yaw_deg=-20
    )
    assert trace.t[0] == 0.0
    np.testing.assert_allclose(np.diff(trace.t), 1.0 / fs, rtol=1e-9)
    assert len(trace.t) == pytest.approx(12.0 * fs, abs=1)
    assert trace.imu.shape == (len(trace.t), 6)
    assert all(isinstance(v, str) for v in trace.meta.values())
    for key in ("scenario", "person", "seed", "mount_tilt_deg", "mount_yaw_deg"):
        assert key in trace.meta
    assert trace.meta["mount_tilt_deg"] == "30"
    assert truth.segments[1]["activity"] == "walk_forward"


def test_suite_composition():
    suite = synth.benchmark_suite()
    names = [n for n, _ in suite]
    assert 30 <= len(suite) <= 40 and len(set(names)) == len(names)
    people = {(kw["person_kind"], kw["person_seed"]) for _, kw in suite}
    assert len(people) >= 8 and {k for k, _ in people} == {"adult", "older", "rehab"}
    assert {kw["fs_hz"] for _, kw in suite} == {25, 52, 100, 104, 200}
    assert max(abs(kw["mount_tilt_deg"]) for _, kw in suite) == 45
    assert max(abs(kw["mount_yaw_deg"]) for _, kw in suite) == 30
    peaks = [
        sw["peak_deg"] for _, kw in suite for seg in kw["segments"] for sw in seg.get("sway", [])
    ]
    assert sum(p >= 12 for p in peaks) >= 10 and sum(p <= 4 for p in peaks) >= 10
    acts = {seg["activity"] for _, kw in suite for seg in kw["segments"]}
    assert acts == set(synth.ACTIVITIES)
    assert any(seg.get("treadmill") for _, kw in suite for seg in kw["segments"])


def test_excessive_sway_stays_over_the_limit():
    kwargs = dict(synth.benchmark_suite())["sway_bwd_R2"]
    person = synth.make_person(kwargs["person_seed"], kind=kwargs["person_kind"])
    motion = synth.simulate_motion(kwargs["segments"], person, seed=kwargs["seed"])
    assert len(motion.sway) == 5
    for ep, over in zip(motion.sway, motion.sway_over_s, strict=True):
        if ep.peak_deg > 10:
            assert ep.t_over_limit is not None and over >= 0.4
        else:
            assert ep.t_over_limit is None and ep.peak_deg <= 4


def test_write_suite_round_trip(tmp_path):
    (path,) = synth.write_suite(tmp_path, names=["stop_start_A3"])
    assert path.name == "stop_start_A3.csv.gz"
    trace = read_trace(path)
    truth = read_truth(tmp_path / "stop_start_A3.truth.json")
    ref_trace, ref_truth = synth.make_case("stop_start_A3")
    np.testing.assert_allclose(trace.imu, ref_trace.imu, rtol=1e-5, atol=1e-5)
    assert trace.meta["scenario"] == "stop_start_A3"
    assert [s.t for s in truth.steps] == pytest.approx([s.t for s in ref_truth.steps])
    assert {s.direction for s in truth.steps} == {"forward", "backward"}
    with pytest.raises(ValueError):
        synth.write_suite(tmp_path, names=["no_such_case"])


def test_bad_segments_are_rejected():
    person = synth.make_person(1)
    with pytest.raises(ValueError):
        synth.synthesize([{"activity": "jump", "duration": 3}], person)
    with pytest.raises(ValueError):
        synth.synthesize([{"activity": "walk", "direction": "sideways"}], person)
    with pytest.raises(ValueError):
        synth.synthesize(_walk("forward", 5.0, sway=[{"at": 4.0, "duration": 3.0}]), person)
    with pytest.raises(ValueError):
        synth.synthesize(_walk("forward", 5.0), person, fs_hz=5.0)


def test_cost_case_is_a_fixed_mixed_trace():
    kwargs = synth.cost_case_kwargs(52)
    trace, truth = synth.make_case("cost", **kwargs)
    assert trace.fs_hz == 52 and trace.duration_s == pytest.approx(60.0, abs=0.05)
    assert {s.direction for s in truth.steps} == {"forward", "backward"}
    assert len(truth.sway_episodes) == 1
