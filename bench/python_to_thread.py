#!/usr/bin/env python3
"""bench/python_to_thread.py - the cross-language anchor for bench/offload.cpp.

The same trivial round trip as smartasync's benchmark, written the way Python users offload a
blocking call: `await asyncio.to_thread(f, x)` (the loop's default ThreadPoolExecutor), with one
call in flight and with 64 coroutines in flight. Same method as the C++ programs: calibrate,
repeat, report the median and min/max; optional rows appended to --out in the same TSV format.
"""
import argparse
import asyncio
import statistics
import sys
import time


def trivial(x):
    return x + 1


async def sequential(n):
    for i in range(n):
        await asyncio.to_thread(trivial, i)


async def concurrent(n, inflight=64):
    async def chain(per):
        for i in range(per):
            await asyncio.to_thread(trivial, i)

    await asyncio.gather(*(chain(n // inflight) for _ in range(inflight)))


async def timed(fn, n):
    start = time.perf_counter()
    await fn(n)
    return (time.perf_counter() - start) * 1e9 / n


async def measure(fn, rounds, target):
    # One event loop (and one default executor, already warm) for every run, as in a server.
    n = 64
    while True:  # calibrate: grow until one run takes a tenth of the target
        per_op = await timed(fn, n)
        if per_op * n >= target * 1e9 / 10:
            break
        n *= 4
    n = max(64, int(target * 1e9 / per_op) // 64 * 64)
    return [await timed(fn, n) for _ in range(rounds)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out")
    args = parser.parse_args()
    rounds, target = (3, 0.05) if args.quick else (args.rounds, 0.3)

    print(f"# Python {sys.version.split()[0]} asyncio.to_thread round trip of a trivial "
          f"function ({rounds} rounds, medians)")
    print(f"{'variant':<34} {'median ns/op':>12} {'min':>12} {'max':>12} {'ops/s (med)':>12}")
    rows = []
    for name, fn in (("asyncio.to_thread, 1 in flight", sequential),
                     ("asyncio.to_thread, 64 in flight", concurrent)):
        v = asyncio.run(measure(fn, rounds, target))
        med = statistics.median(v)
        print(f"{name:<34} {med:>12.1f} {min(v):>12.1f} {max(v):>12.1f} {1e9 / med:>12.0f}")
        rows.append(f"python\t{name}\tns_per_op\t{med:.6g}\t{min(v):.6g}\t{max(v):.6g}\tns\n")
    if args.out:
        with open(args.out, "a") as f:
            f.writelines(rows)


if __name__ == "__main__":
    main()
