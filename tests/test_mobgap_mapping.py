"""McRoberts sensor frame -> FLU mapping and the reference helpers of bench.mobgap_data.

Nothing here downloads anything: the inputs are small hand-made samples.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `bench` is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))
md = importlib.import_module("bench.mobgap_data")

G = 9.80665


def test_sensor_axes_map_to_flu():
    # McRoberts as worn: x up, y right, z forward.
    assert np.allclose(md.sensor_to_flu([1.0, 0.0, 0.0]), [0.0, 0.0, 1.0])  # up
    assert np.allclose(md.sensor_to_flu([0.0, 1.0, 0.0]), [0.0, -1.0, 0.0])  # right = -left
    assert np.allclose(md.sensor_to_flu([0.0, 0.0, 1.0]), [1.0, 0.0, 0.0])  # forward


def test_standing_sample_to_si_flu():
    # Upright, belt pitched a little (sensor z reads -0.11 g), turning left at 90 deg/s
    # about the sensor's up axis.
    acc_g = np.array([[0.97, -0.09, -0.11]])
    gyr_dps = np.array([[90.0, 0.0, 0.0]])
    imu = md.imu_to_si_flu(acc_g, gyr_dps)
    expected = [-0.11 * G, 0.09 * G, 0.97 * G, 0.0, 0.0, math.pi / 2]
    assert imu.shape == (1, 6)
    assert np.allclose(imu[0], expected)


def test_mapping_is_a_proper_rotation():
    r = md.SENSOR_TO_FLU
    assert np.allclose(r @ r.T, np.eye(3))
    assert np.isclose(np.linalg.det(r), 1.0)


def _swaying_body(fs: float = 100.0, seconds: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Gravity direction and angular rate (FLU) of a trunk rolling/pitching/yawing slowly."""
    t = np.arange(int(fs * seconds)) / fs
    w = np.column_stack(
        [
            0.5 * np.sin(2 * np.pi * 0.3 * t),
            0.4 * np.sin(2 * np.pi * 0.2 * t + 1.0),
            0.3 * np.sin(2 * np.pi * 0.25 * t),
        ]
    )
    v = np.empty_like(w)
    g = np.array([0.0, 0.0, 1.0])
    for k in range(len(t)):  # a world-fixed vector seen from the body: dv/dt = v x w
        v[k] = g
        g = g + np.cross(g, w[k]) / fs
        g /= np.linalg.norm(g)
    return v, w


def test_gravity_gyro_consistency_catches_a_mirrored_mapping():
    pytest.importorskip("scipy")
    v, w = _swaying_body()
    # Back to the sensor frame (sensor = R^T flu), in the sensor's units (g, deg/s).
    acc_g = v @ md.SENSOR_TO_FLU
    gyr_dps = np.rad2deg(w @ md.SENSOR_TO_FLU)
    imu = md.imu_to_si_flu(acc_g, gyr_dps)
    assert md.gravity_gyro_consistency(imu, 100.0) > 0.9
    mirrored = imu * np.array([1.0, -1.0, 1.0, 1.0, -1.0, 1.0])  # y not negated: left-handed
    assert md.gravity_gyro_consistency(mirrored, 100.0) < -0.9


def test_reference_time_is_one_matlab_sample_earlier():
    assert md.reference_time(5.05, 100.0) == pytest.approx(5.04)
    out = md.reference_time([0.01, float("nan"), 9.88], 100.0)
    assert out[0] == pytest.approx(0.0) and math.isnan(out[1]) and out[2] == pytest.approx(9.87)


def test_reference_holes():
    edge = md.HOLE_EDGE_S
    # NaN between 2.0 and 3.0, same foot 3.0 -> 4.0, then a regular pair.
    times = [1.0, 1.5, 2.0, float("nan"), 3.0, 4.0, 4.5, 5.0]
    sides = ["left", "right", "left", "right", "left", "left", "right", "left"]
    holes = md.reference_holes(times, sides)
    assert holes == [
        pytest.approx((2.0 + edge, 3.0 - edge)),
        pytest.approx((3.0 + edge, 4.0 - edge)),
    ]
    # A gap of two strides between alternating feet also counts as missing steps.
    times = [1.0, 1.5, 2.0, 2.5, 4.5, 5.0]
    sides = ["left", "right", "left", "right", "left", "right"]
    assert md.reference_holes(times, sides) == [pytest.approx((2.5 + edge, 4.5 - edge))]


def test_scored_intervals_merge_clip_and_cut_holes():
    bouts = [
        md.RefBout(start=0.2, end=3.0, ics=[], sides=[], holes=[(1.0, 1.5)]),
        md.RefBout(start=3.8, end=9.9, ics=[], sides=[]),
    ]
    assert md.scored_intervals(bouts, duration_s=10.0, margin_s=0.5) == [
        pytest.approx((0.0, 1.0)),
        pytest.approx((1.5, 10.0)),
    ]


def test_archive_members_outside_lab_or_unsafe():
    assert md._lab_member("mobgap-1.2.0/README.md") is None
    rel = md._lab_member("mobgap-1.2.0/example_data/data/lab/HA/001/data.mat")
    assert rel == PurePosixPath("HA/001/data.mat")
    for bad in ("/etc/passwd", "mobgap-1.2.0/example_data/data/lab/../../../x"):
        with pytest.raises(md.DataUnavailable):
            md._lab_member(bad)


def test_pip_failure_reason_says_registry_not_reachable():
    output = (
        "ERROR: Could not find a version that satisfies the requirement mobgap==1.2.0 "
        "(from versions: none)\nERROR: No matching distribution found for mobgap==1.2.0\n"
    )
    assert md._pip_failure_reason(output).startswith("registry not reachable: ")
