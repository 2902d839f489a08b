from retrostep_core.events import STEP, EventQueue


def test_ring_keeps_order_across_wraparound():
    q = EventQueue(4)
    got = []
    for k in range(10):
        q.put(STEP, k, 1, 0)
        if k % 2:
            while q.count:
                i = q.pop()
                got.append(q.t[i])
    assert got == list(range(10))
    assert q.dropped == 0


def test_overflow_is_counted_not_silent():
    q = EventQueue(3)
    for k in range(5):
        q.put(STEP, k, 1, 0)
    assert q.count == 3 and q.dropped == 2
    assert [q.t[q.pop()] for _ in range(3)] == [0, 1, 2]
