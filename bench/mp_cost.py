# MicroPython script: cost and allocation of the pipeline per sample.
# Usage: micropython mp_cost.py SAMPLES.i32 FS_HZ
# Prints: "state_bytes N", "us_per_sample X", "alloc_per_sample Y", "samples N".
import gc
import sys
import time
from array import array

from retrostep_core.pipeline import GaitPipeline


def nop(ax, ay, az, gx, gy, gz):
    pass


def main():
    path = sys.argv[1]
    fs = float(sys.argv[2])
    with open(path, "rb") as f:
        data = f.read()
    buf = array("i", data)
    n = len(buf) // 6
    gc.collect()
    m0 = gc.mem_alloc()
    p = GaitPipeline(fs)
    gc.collect()
    print("state_bytes", gc.mem_alloc() - m0)
    q = p.events
    push = p.push
    # Warm up on the first 20 s (filters settle, first bout confirmed).
    warm = min(n // 4, int(fs * 20))
    k = 0
    for _ in range(warm):
        push(buf[k], buf[k + 1], buf[k + 2], buf[k + 3], buf[k + 4], buf[k + 5])
        k += 6
        while q.count:
            q.pop()
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = time.ticks_us()
    for _ in range(n - warm):
        push(buf[k], buf[k + 1], buf[k + 2], buf[k + 3], buf[k + 4], buf[k + 5])
        k += 6
        while q.count:
            q.pop()
    t1 = time.ticks_us()
    a1 = gc.mem_alloc()
    gc.enable()
    m = n - warm
    # The same loop calling a do-nothing function: the cost of feeding samples.
    k = warm * 6
    t2 = time.ticks_us()
    for _ in range(m):
        nop(buf[k], buf[k + 1], buf[k + 2], buf[k + 3], buf[k + 4], buf[k + 5])
        k += 6
        while q.count:
            q.pop()
    t3 = time.ticks_us()
    print("samples", m)
    print("us_per_sample", time.ticks_diff(t1, t0) / m)
    print("loop_us_per_sample", time.ticks_diff(t3, t2) / m)
    print("alloc_per_sample", (a1 - a0) / m)


main()
