"""Timing helper shared by the benchmark scripts.

In: a zero-argument callable. Out: its best wall time in seconds over a few runs
(best, not mean: the least disturbed run is the closest to the code's own cost).
"""

import time


def best_time(fn, repeat=3, number=1, warmup=False):
    """Best of ``repeat`` runs of ``number`` calls each, per call; ``warmup`` runs ``fn`` once
    first, untimed (JIT compilation, transform caches)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)
