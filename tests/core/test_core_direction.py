import math

from retrostep_core.direction import DirectionFeature


def _score(direction, rot_deg=0.0, amp=2000, cadence=100, fs=25):
    d = DirectionFeature(fs * 1000, 1)
    f = cadence / 60
    c = math.cos(math.radians(rot_deg))
    s = math.sin(math.radians(rot_deg))
    score = 0
    for i in range(int(fs * 8)):
        ph = 2 * math.pi * f * i / fs
        av = amp * math.cos(ph)
        aap = -direction * 0.7 * amp * math.sin(ph)
        # rotate within the sagittal plane (posture / mounting pitch)
        d.update(int(aap * c - av * s), int(aap * s + av * c))
        if i % int(fs / f) == 0 and i:
            score = d.close_step()
    return score


def test_forward_is_positive_backward_negative():
    assert _score(1) > 500
    assert _score(-1) < -500


def test_invariant_to_sagittal_rotation():
    for rot in (-45, -20, 20, 45):
        assert _score(1, rot) > 500
        assert _score(-1, rot) < -500
