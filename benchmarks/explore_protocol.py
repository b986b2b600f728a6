#!/usr/bin/env python3
"""Explore the claim protocol's interleavings for a long time: the property test's state machine
(tests/protocol_machine.py), run for many more examples than CI runs, with a random seed.

    .venv/bin/python benchmarks/explore_protocol.py                          # 200 examples of 30 steps
    .venv/bin/python benchmarks/explore_protocol.py --examples 10000 --seed 13
    .venv/bin/python benchmarks/explore_protocol.py --examples 50 --no-shrink # a quick look
    nice -n 19 .venv/bin/python benchmarks/explore_protocol.py --examples 10000 --steps 8 \
        --tolerate-known-bugs --max-minutes 85                               # the long run

Prints (stdout) how many interleavings (Hypothesis examples) and steps it explored, how often each
rule ran, the invariants checked after every step, the elapsed time, and what it found: nothing, or
the violated promise with the minimal failing sequence of steps Hypothesis printed. Progress goes to
stderr. Exits 1 when a promise was broken. The machine runs on the local runner (the generated
template deployed into moto, in-process), the clock frozen at 2026-03-02 09:00 UTC between the
machine's own moves. Several processes with different ``--seed`` values explore different
interleavings; their counts add up. ``--max-minutes`` stops at the first example that would start
after that time and reports what was explored so far (``stopped``), so that a long run on a busy
machine always ends with its numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Names that are not rules: what the machine counts besides each rule's runs.
NOT_RULES = {"interleavings", "invariant checks", "sends"}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200, help="Hypothesis max_examples (default 200)")
    parser.add_argument("--steps", type=int, default=30, help="stateful_step_count: steps per example (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="the random seed (default: a random one, printed)")
    parser.add_argument("--no-shrink", action="store_true", help="report a violation as found, without shrinking it")
    parser.add_argument("--inlined", action="store_true", help="run the handlers as the template inlines them")
    parser.add_argument("--progress", type=int, default=100, help="report progress every N examples (stderr)")
    parser.add_argument(
        "--tolerate-known-bugs",
        action="store_true",
        help="count the protocol bugs already known (tests/protocol_machine.py KNOWN_BUGS) instead of stopping at them",
    )
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop before the next example after this long, and report"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args()


class OutOfTime(BaseException):
    """The time budget is spent: raised between two examples. Not an ``Exception``, so Hypothesis
    neither reports it as a failure nor shrinks it: it ends the run."""


class Progress:
    """Counts the examples as the machine starts them, and reports every ``every`` of them."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.started = time.monotonic()

    def __call__(self, totals: Counter[str]) -> None:
        done = totals["interleavings"]
        if self.every and done % self.every == 0:
            elapsed = time.monotonic() - self.started
            print(
                f"[{elapsed:8.0f}s] {done} interleavings, {totals['invariant checks'] - done} steps,"
                f" {elapsed / done:.2f} s each",
                file=sys.stderr,
                flush=True,
            )


def explore(options: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Run the machine; the results as a dict (``found``: None, or the violation's report)."""
    import time_machine
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import seed as with_seed
    from hypothesis.stateful import get_state_machine_test

    from tapstack.cli import render
    from tapstack.local import LocalDeployment, load_template
    from tests.protocol_machine import INVARIANTS, KNOWN_BUGS, World, machine
    from tests.support import SENDER, START

    logging.getLogger("moto").setLevel(logging.CRITICAL)
    report = Progress(options.progress)
    budget = None if options.max_minutes is None else time.monotonic() + 60 * options.max_minutes

    class CountingWorld(World):
        def count(self, what: str) -> None:
            if what == "interleavings" and budget is not None and time.monotonic() > budget:
                raise OutOfTime
            super().count(what)
            if what == "interleavings":
                report(self.totals)

    parameters = {"SenderEmail": SENDER, "ReminderOffsetsMinutes": "1440,60"}
    phases = [Phase.generate] if options.no_shrink else [Phase.generate, Phase.shrink]
    found = None
    stopped = False
    started = time.monotonic()
    with (
        time_machine.travel(START, tick=False) as clock,
        LocalDeployment(
            load_template(render("yaml")), parameters, use_handler_files=not options.inlined, echo_logs=False
        ) as deployment,
    ):
        world = CountingWorld(deployment, clock, tolerate=options.tolerate_known_bugs)
        test = get_state_machine_test(
            machine(world),
            settings=settings(
                max_examples=options.examples,
                stateful_step_count=options.steps,
                deadline=None,
                derandomize=False,
                database=None,
                phases=phases,
                report_multiple_bugs=False,
                suppress_health_check=list(HealthCheck),
            ),
        )
        try:
            with_seed(seed)(test)()
        except OutOfTime:
            stopped = True
        except Exception as error:  # noqa: BLE001 - a broken promise is the finding, reported below
            notes = "\n".join(getattr(error, "__notes__", []))
            found = f"{type(error).__name__}: {error}\n{notes}".strip()
        world.reset()  # counts the last example's sends
    totals = world.totals
    interleavings = totals["interleavings"]
    return {
        "seed": seed,
        "max_examples": options.examples,
        "stateful_step_count": options.steps,
        "handlers": "inlined" if options.inlined else "files",
        "interleavings": interleavings,
        "steps": totals["invariant checks"] - interleavings,
        "sends": totals["sends"],
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "stopped": stopped,
        "rules": {name: n for name, n in sorted(totals.items()) if name not in NOT_RULES},
        "invariants": list(INVARIANTS),
        "tolerated": options.tolerate_known_bugs,
        "known_bugs": {
            name: {"met": world.known[name], "first": world.known_examples.get(name), "bug": bug}
            for name, bug in KNOWN_BUGS.items()
        },
        "found": found,
    }


def show(results: dict[str, Any]) -> None:
    interleavings, steps, elapsed = results["interleavings"], results["steps"], results["elapsed_seconds"]
    print(f"seed {results['seed']}: max_examples {results['max_examples']}, {results['stateful_step_count']} steps")
    print(f"interleavings explored: {interleavings:,}")
    if results["stopped"]:
        print("stopped by --max-minutes before max_examples")
    print(f"steps: {steps:,} ({steps / max(interleavings, 1):.1f} per interleaving)")
    print(f"messages sent: {results['sends']:,}")
    print(f"elapsed: {elapsed:,.0f} s ({elapsed / max(interleavings, 1):.2f} s per interleaving)")
    print("rules (and their variants) run:")
    width = max(map(len, results["rules"]), default=0)
    for name, count in results["rules"].items():
        print(f"  {name:<{width}}  {count:>9,}")
    print("invariants checked:")
    for invariant in results["invariants"]:
        print(f"  - {invariant}")
    if results["tolerated"]:
        print("known bugs, counted (once per example and report), not stopped at:")
        for name, known in results["known_bugs"].items():
            print(f"  {name}: met {known['met']:,} times{'; first: ' + known['first'] if known['first'] else ''}")
            print(f"    {known['bug']}")
    other = "other than the known bugs above" if results["tolerated"] else ""
    print("found: " + (results["found"] or f"no violation {other}".strip()))


def main() -> int:
    options = arguments()
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"exploring with seed {seed} (repeat with --seed {seed})", file=sys.stderr, flush=True)
    results = explore(options, seed)
    show(results)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if results["found"] else 0


if __name__ == "__main__":
    sys.exit(main())
