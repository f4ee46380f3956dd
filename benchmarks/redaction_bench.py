#!/usr/bin/env python3
"""Benchmark of the KB note's patient-data redaction (tracker_bridge/core/redact.py).

    python benchmarks/redaction_bench.py                      # full run: 100 KB and 1 MB
    python benchmarks/redaction_bench.py --quick              # 10 KB and 100 KB
    python benchmarks/redaction_bench.py --sizes 2000,20000   # any two sizes, in characters

Prints, for the machine it runs on:

- the corpus figures (tests/core/data/redaction/): recall per kind of identifier, technical
  lines changed per kind of finding that changed them, overall figures and every miss; the
  same for the holdout lines written after the detector;
- throughput of ``redact`` on realistic text (the corpus lines shuffled together): one
  ticket-sized text and one of the larger size;
- the linear-time figures: ``redact`` on hostile texts of both sizes, seconds and their ratio.
  With the larger size ten times the smaller, a ratio near 10 is linear; a quadratic cost would
  show near 100.

Times are CPU seconds of this process (``time.process_time``), the best of a few runs with
the garbage collector off, and the runs of the two sizes alternate: on a shared machine the
wall clock mostly measures the other jobs, CPU time much less so. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Benchmark the checkout this script sits in, installed or not.
sys.path.insert(0, str(ROOT))

import benchmachine  # noqa: E402 (this folder: the script's own)

from tests.core import redaction_corpus as corpus  # noqa: E402
from tracker_bridge.core.redact import KIND_LABELS, redact  # noqa: E402

# -- the machine ------------------------------------------------------------------------------


def describe_machine() -> list[str]:
    return benchmachine.describe_machine(("tracker-bridge", "google-re2", "phonenumbers", "python-stdnum"))


# -- timing -----------------------------------------------------------------------------------


def cpu_time(fn: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()
        fn()
        return time.process_time() - t0
    finally:
        gc.enable()


def best_time(fn: Callable[[], object], repeats: int) -> float:
    return min(cpu_time(fn) for _ in range(repeats))


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000} MB"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000} KB"
    return f"{n} B"


# -- corpus figures ---------------------------------------------------------------------------


def pct(a: int, b: int) -> str:
    return f"{a}/{b}".rjust(9) + f" {100 * a / b if b else 0:5.1f}%"


def print_corpus(title: str, sc: corpus.Score) -> None:
    judged = sc.technical_lines - sc.accepted_lines
    by_design = f", {sc.accepted_lines} redacted by design" if sc.accepted_lines else ""
    print(
        f"{title}: {sc.identifier_lines} identifier lines with {sum(sc.total.values())} "
        f"identifiers; {sc.technical_lines} technical lines{by_design}"
    )
    print(f"  {'kind':<14}{'recall':>16}    {'technical lines changed':>26}")
    kinds = list(corpus.CORPUS_KINDS)
    for kind in kinds:
        if not sc.total[kind]:
            continue
        fk = corpus.CORPUS_KINDS[kind]
        print(
            f"  {kind:<14}{pct(sc.found[kind], sc.total[kind])}    "
            f"{pct(sc.fp_kinds[fk], judged):>26}   ({KIND_LABELS[fk]})"
        )
    for fk, n in sorted(sc.fp_kinds.items()):
        if fk not in corpus.CORPUS_KINDS.values():
            print(f"  {'(' + fk + ')':<14}{'':>16}    {pct(n, judged):>26}   ({KIND_LABELS[fk]})")
    found, total = sum(sc.found.values()), sum(sc.total.values())
    print(f"  {'overall':<14}{pct(found, total)}    {pct(len(sc.false_positives), judged):>26}")
    for m in sc.misses:
        print(f"  missed {m.kind}: {m.identifier!r} -> {m.redacted!r}")
    for c in sc.changed:
        how = f"by design: {c.accepted}" if c.accepted else "false positive"
        print(f"  changed ({how}): {c.text!r} -> {c.redacted!r}")
    print(
        f"  over-redaction in identifier lines: {len(sc.over_redacted)} words outside the marked identifiers"
    )


def holdout_score() -> corpus.Score:
    saved = corpus.IDENTIFIERS, corpus.TECHNICAL
    corpus.IDENTIFIERS = corpus.DATA / "holdout.jsonl"
    corpus.TECHNICAL = corpus.DATA / "holdout_technical.jsonl"
    try:
        return corpus.score()
    finally:
        corpus.IDENTIFIERS, corpus.TECHNICAL = saved


# -- texts ------------------------------------------------------------------------------------


def realistic(n: int, seed: int = 2026) -> str:
    """Corpus lines (identifier and technical) shuffled together, to ``n`` characters. The
    corpus is about 35 KB: past the first round every digit of a line is drawn anew, so that
    a larger text is not the same numbers again (the phone check caches answers per text)."""
    lines = [r["text"] for r in corpus.load(corpus.IDENTIFIERS) + corpus.load(corpus.TECHNICAL)]
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    rounds = 0
    while size < n:
        rng.shuffle(lines)
        for line in lines:
            if rounds:
                line = "".join(rng.choice("0123456789") if c.isdigit() else c for c in line)
            out.append(line)
            size += len(line) + 1
            if size >= n:
                break
        rounds += 1
    return "\n".join(out)[:n]


def repeat(piece: str) -> Callable[[int], str]:
    return lambda n: (piece * (n // len(piece) + 1))[:n]


def random_phones(n: int, seed: int = 7) -> str:
    """UK and NL phone numbers, all different, one after the other: every one is checked."""
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < n:
        p = rng.choice(
            (
                f"020 7946 {rng.randrange(10000):04d}",
                f"07{rng.randrange(100, 1000)} {rng.randrange(1000000):06d}",
                f"06-{rng.randrange(10000000, 100000000)}",
                f"0113 496 {rng.randrange(10000):04d}",
            )
        )
        parts.append(p)
        size += len(p) + 1
    return " ".join(parts)[:n]


def random_digit_runs(n: int, seed: int = 8) -> str:
    """Digits in random groups of 1-4 joined by single spaces: one endless candidate number."""
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < n:
        g = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 4)))
        parts.append(g)
        size += len(g) + 1
    return " ".join(parts)[:n]


HOSTILE: list[tuple[str, Callable[[int], str]]] = [
    ("'MRN a ' * n", repeat("MRN a ")),
    ("'0' * n", repeat("0")),
    ("'+1 ' * n", repeat("+1 ")),
    ("'0 ' * n", repeat("0 ")),
    ("'01 ' * n", repeat("01 ")),
    ("random digit groups", random_digit_runs),
    ("one line of 'a'", repeat("a")),
    ("'Mr ' * n", repeat("Mr ")),
    ("'Mr Aa ' * n", repeat("Mr Aa ")),
    ("'Patient ' * n", repeat("Patient ")),
    ("'a@' * n", repeat("a@")),
    ("'1.' * n", repeat("1.")),
    ("'DOB 1/' * n", repeat("DOB 1/")),
    ("different phone numbers", random_phones),
    ("realistic (corpus lines)", realistic),
]


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="10 KB and 100 KB instead of 100 KB and 1 MB"
    )
    ap.add_argument("--sizes", help="two sizes in characters, comma-separated (overrides --quick)")
    args = ap.parse_args(argv)
    if args.sizes:
        small, large = (int(x) for x in args.sizes.split(","))
    elif args.quick:
        small, large = 10_000, 100_000
    else:
        small, large = 100_000, 1_000_000
    repeats = 3

    for line in describe_machine():
        print(line)
    print(
        f"run: {'quick' if args.quick else 'full'}, sizes {size_label(small)} and {size_label(large)}"
    )
    print()

    print_corpus("corpus", corpus.score())
    print()
    print_corpus("holdout (written after the detector)", holdout_score())
    print()

    print("throughput: redact() on realistic text (corpus lines shuffled together), CPU time")
    for n in sorted({2_000, small, large}):
        text = realistic(n)
        t = best_time(lambda text=text: redact(text), 5 if n <= 2_000 else repeats)
        print(f"  {size_label(n):>8} {t * 1000:10.1f} ms  {n / 1000 / t:8.1f} KB/s")
    print()

    print(f"linear time: redact() on hostile text, CPU seconds, best of {repeats} alternating "
          f"runs per size; linear = ratio {large / small:.0f}")  # fmt: skip
    print(f"  {'input':<28}{size_label(small):>10}{size_label(large):>10}   ratio")
    for name, make in HOSTILE:
        a_text, b_text = make(small), make(large)
        ta = tb = float("inf")
        for _ in range(repeats):
            ta = min(ta, cpu_time(lambda t=a_text: redact(t)))
            tb = min(tb, cpu_time(lambda t=b_text: redact(t)))
        print(f"  {name:<28}{ta:9.3f}s{tb:9.3f}s   {tb / ta:5.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
