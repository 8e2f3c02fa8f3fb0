"""Core evaluation speed: per-case latency on a typical case, and throughput over 10,000 cases.

Run: `make bench` or `.venv/bin/python benchmarks/core_speed.py [--cases N]`. Prints figures and
asserts nothing (targets: p50 <= 1 ms per typical case; 10,000 cases in one process).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import date
from pathlib import Path

from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.knowledge import load_knowledge

ROOT = Path(__file__).resolve().parents[1]
TYPICAL = "gb-maintenance-appropriate"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2_000)
    args = parser.parse_args()

    started = time.perf_counter()
    knowledge = load_knowledge()
    load_ms = (time.perf_counter() - started) * 1000
    docs = [json.loads(p.read_text()) for p in sorted((ROOT / "tests/scenarios").glob("*.json"))]
    cases = [(d["id"], parse_case(d["case"], knowledge)) for d in docs]
    typical = next(c for i, c in cases if i == TYPICAL)

    samples = []
    for _ in range(args.repeat):
        t0 = time.perf_counter_ns()
        evaluate(typical, knowledge, as_of=typical.as_of)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    samples.sort()

    t0 = time.perf_counter()
    findings = 0
    for n in range(args.cases):
        _, case = cases[n % len(cases)]
        findings += len(evaluate(case, knowledge, as_of=case.as_of).findings)
    elapsed = time.perf_counter() - t0

    t0 = time.perf_counter()
    for n in range(args.cases):
        doc = docs[n % len(docs)]
        case = parse_case(doc["case"], knowledge)
        json.dumps(
            evaluate(case, knowledge, as_of=date.fromisoformat(doc["case"]["as_of"])).to_dict()
        )
    with_io = time.perf_counter() - t0

    print("b12plan core speed")
    print(f"  knowledge load (validated)        {load_ms:8.1f} ms")
    print(f"  evaluate typical case ({TYPICAL})")
    p50 = statistics.median(samples)
    p90, p99 = samples[int(0.9 * len(samples))], samples[int(0.99 * len(samples))]
    print(f"    p50 {p50:.3f} ms   p90 {p90:.3f} ms   p99 {p99:.3f} ms   ({args.repeat} runs)")
    print(
        f"  evaluate {args.cases:,} cases (64 scenario shapes)  {elapsed:6.2f} s"
        f"  = {args.cases / elapsed:,.0f} cases/s  ({findings:,} findings)"
    )
    print(
        f"  parse + evaluate + JSON, {args.cases:,} cases    {with_io:6.2f} s"
        f"  = {args.cases / with_io:,.0f} cases/s"
    )


if __name__ == "__main__":
    main()
