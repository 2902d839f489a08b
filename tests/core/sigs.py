"""Small integer test signals that MicroPython and CPython generate identically enough.

Samples are (ax, ay, az, gx, gy, gz) tuples in the pipeline's units (mm/s^2, mrad/s),
FLU frame. Generated once (allocation is fine here); the tests then feed them.
"""

import math

G = 9807


def rotate_pitch(ax, az, deg):
    """Rotate an x/z vector by ``deg`` about the y axis (device tilted)."""
    c = math.cos(math.radians(deg))
    s = math.sin(math.radians(deg))
    return ax * c - az * s, ax * s + az * c


def walking(direction=1, fs=50, seconds=20.0, cadence=100.0, amp=2500, tilt_deg=0.0, lean_deg=0.0):
    """Inverted-pendulum-like walking: forward speed highest when vertical acc peaks.

    ``direction`` +1 forward, -1 backward (time-reversed waveform). Returns (samples,
    contact_times_in_samples).
    """
    n = int(fs * seconds)
    f = cadence / 60.0
    out = []
    contacts = []
    full = math.radians(lean_deg)
    ramp = 0.3
    for i in range(n):
        t = i / fs
        if t < ramp:
            lean = full * t / ramp
            rate = full / ramp
        elif t > seconds - ramp:
            lean = full * (seconds - t) / ramp
            rate = -full / ramp
        else:
            lean = full
            rate = 0.0
        ph = 2 * math.pi * f * t
        av = amp * math.cos(ph) + 0.3 * amp * math.cos(2 * ph + 0.6)
        aap = -direction * 0.6 * amp * math.sin(ph) + 0.15 * amp * math.cos(2 * ph)
        aml = 0.3 * amp * math.sin(ph / 2) + G * math.sin(lean)
        az = G * math.cos(lean) + av
        ax, az = rotate_pitch(aap, az, tilt_deg)
        wx = 40 * math.cos(ph / 2) + 1000 * rate
        wy = 30 * math.sin(ph)
        out.append((int(ax), int(aml), int(az), int(wx), int(wy), 0))
    k = 0
    while True:
        tc = (k / f) * fs
        if tc >= n:
            break
        contacts.append(int(tc))
        k += 1
    return out, contacts


def still(fs=50, seconds=5.0, tilt_deg=0.0):
    ax, az = rotate_pitch(0.0, G, tilt_deg)
    return [(int(ax), 0, int(az), 0, 0, 0)] * int(fs * seconds)


def feed(pipeline, samples):
    """Push samples, return the drained events as (kind, t, a, b) tuples."""
    out = []
    q = pipeline.events
    for s in samples:
        pipeline.push(s[0], s[1], s[2], s[3], s[4], s[5])
        while q.count:
            i = q.pop()
            out.append((q.kind[i], q.t[i], q.a[i], q.b[i]))
    return out
