# MicroPython script (runs in the unix port, not in CPython): reads jobs from stdin,
# runs the firmware pipeline on each trace's int32 sample file, prints events.
#
# Job line:  <path> <fs_mhz> <sway_limit_x100> <sway_min_ms> <sway_refractory_ms>
# Output:    "E kind t a b" per event, then "D dropped" after each job, "Q" at the end.
import sys
from array import array

from retrostep_core.pipeline import GaitPipeline

CHUNK = 512


def run(path, fs_mhz, limit_x100, min_ms, refr_ms):
    p = GaitPipeline(fs_mhz / 1000, limit_x100 / 100, min_ms, refr_ms, 256)
    q = p.events
    buf = array("i", bytes(24 * CHUNK))
    push = p.push
    out = sys.stdout
    with open(path, "rb") as f:
        while True:
            got = f.readinto(buf)
            if not got:
                break
            k = 0
            end = got // 4
            while k < end:
                push(buf[k], buf[k + 1], buf[k + 2], buf[k + 3], buf[k + 4], buf[k + 5])
                k += 6
            drain(q, out)
    p.finish()
    drain(q, out)
    out.write("D %d\n" % q.dropped)


def drain(q, out):
    while q.count:
        i = q.pop()
        out.write("E %d %d %d %d\n" % (q.kind[i], q.t[i], q.a[i], q.b[i]))


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        parts = line.split()
        if not parts:
            continue
        try:
            run(parts[0], int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4]))
        except Exception as e:  # report and go on with the next trace
            sys.stdout.write("X %s\n" % repr(e).replace("\n", " "))
        sys.stdout.write("F\n")
    sys.stdout.write("Q\n")


main()
