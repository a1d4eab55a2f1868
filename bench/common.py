"""Helpers shared by the benchmarks: timing and where the photos are."""
import os
import statistics
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(REPO, "..", "shared", "data")
LANDSCAPES = os.path.join(SHARED_DATA, "landscapes", "train")


def rate(fn, items, warmup=1):
    """Calls fn(); returns items per second of the timed call (after warmup calls)."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    return items / (time.perf_counter() - start)


def interleaved_rates(calls, items, rounds, warmup=1):
    """calls {name: fn}: each round times one call of each in turn, so that a slower
    or busier spell of the machine falls on all of them alike; -> {name: items per
    second at the median call time}."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: items / statistics.median(t) for name, t in times.items()}


def line(name, value, unit, limit_name=None, limit=None):
    text = f"{name:<44} {value:10.1f} {unit}"
    if limit:
        text += f"   vs {limit_name} {limit:.1f} {unit}: ratio {value / limit:.2f}"
    print(text, flush=True)
