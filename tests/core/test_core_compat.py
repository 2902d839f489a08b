from retrostep_core.compat import alpha_q16, isqrt, samples_for


def test_isqrt_is_exact_floor():
    for n in list(range(0, 2000)) + [10**6 - 1, 10**6, 2**30 + 5, 10**14 + 3]:
        r = isqrt(n)
        assert r * r <= n < (r + 1) * (r + 1), n


def test_alpha_matches_backward_euler():
    # tau = 1 s at 25 Hz: dt / (tau + dt) = 0.04 / 1.04
    assert alpha_q16(1000, 25000, 1) == round(65536 * 0.04 / 1.04)
    # same filter rate reached by averaging 4 samples of 100 Hz
    assert alpha_q16(1000, 100000, 4) == alpha_q16(1000, 25000, 1)


def test_samples_for_rounds():
    assert samples_for(200, 52000) == 10  # 10.4 -> 10
    assert samples_for(1000, 100000, 4) == 25
