from sigs import G, rotate_pitch

from retrostep_core.orientation import Orientation


def _settle(o, sample, n=400):
    for _ in range(n):
        o.update(*sample)


def test_level_device_projects_gravity_out():
    o = Orientation(25000, 1)
    _settle(o, (0, 0, G, 0, 0, 0))
    assert abs(o.av) < 20 and abs(o.aap) < 20 and abs(o.aml) < 20


def test_tilted_device_finds_horizontal_forward():
    # Device pitched 40 degrees: a forward push of 1 m/s^2 must still read as aap.
    o = Orientation(25000, 1)
    gx, gz = rotate_pitch(0.0, G, 40)
    _settle(o, (int(gx), 0, int(gz), 0, 0, 0))
    px, pz = rotate_pitch(1000.0, G, 40)
    o.update(int(px), 0, int(pz), 0, 0, 0)
    assert abs(o.aap - 1000) < 30, o.aap
    assert abs(o.av) < 30, o.av


def test_roll_rate_is_about_the_horizontal_forward_axis():
    o = Orientation(25000, 1)
    gx, gz = rotate_pitch(0.0, G, 30)
    _settle(o, (int(gx), 0, int(gz), 0, 0, 0))
    # Rotation about the world forward axis, expressed in the pitched device frame.
    wx, wz = rotate_pitch(1000.0, 0.0, 30)
    o.update(int(gx), 0, int(gz), int(wx), 0, int(wz))
    assert abs(o.wroll - 1000) < 15 and abs(o.wyaw) < 15
