# Runs the portable core tests inside MicroPython: `micropython mp_runner.py MODULE...`.
# Prints "PASS module function" or "FAIL module function: error" per test.
import sys


def main():
    for name in sys.argv[1:]:
        mod = __import__(name)
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            fn = getattr(mod, attr)
            try:
                fn()
                print("PASS", name, attr)
            except Exception as e:  # report every failure, keep going
                print("FAIL", name, attr + ":", repr(e))


main()
