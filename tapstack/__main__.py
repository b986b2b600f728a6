"""``python -m tapstack build ...``, ``python -m tapstack simulate [SCENARIO.json]``,
``python -m tapstack preview --item ITEM.json``, and the commands that operate a deployed stack:
``doctor``, ``backfill`` and ``status`` (``--stack NAME``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from tapstack import cli


def parameter_overrides(assignments: list[str]) -> dict[str, str] | None:
    """``Name=value`` assignments as a mapping; None (and the error printed) when one is malformed."""
    parameters = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator:
            print(f"error: --parameter expects Name=value, got {assignment!r}", file=sys.stderr)
            return None
        parameters[name] = value
    return parameters


def simulate(args: argparse.Namespace) -> int:
    try:
        from tapstack.local.simulation import Scenario, ScenarioError, Simulation, print_timeline
    except ImportError as error:
        print(f"error: the simulation needs the local extra: pip install 'tapstack[local]' ({error})", file=sys.stderr)
        return 2
    from tapstack.local.resolve import UnsupportedTemplate

    # moto's interpreter logs every Choice that finds no path as an error; the timeline says what matters.
    logging.getLogger("moto").setLevel(logging.CRITICAL)

    parameters = parameter_overrides(args.parameter)
    if parameters is None:
        return 2
    try:
        scenario = Scenario.load(args.scenario)
        if not args.template.is_file():
            raise ScenarioError(f"{args.template}: no such template (run python build.py first)")
        if scenario.description:
            print(scenario.description + "\n")
        result = Simulation(args.template, scenario, parameters).run()
    except (ScenarioError, UnsupportedTemplate) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_timeline(result, sys.stdout, show_messages=args.messages or scenario.show_messages)
    return 0 if result.ok else 1


def preview(args: argparse.Namespace) -> int:
    try:
        from tapstack.local.preview import PreviewError, UnsupportedTemplate, load_item, print_preview
        from tapstack.local.preview import preview as render_preview
    except ImportError as error:
        print(f"error: preview needs the local extra: pip install 'tapstack[local]' ({error})", file=sys.stderr)
        return 2
    parameters = parameter_overrides(args.parameter)
    if parameters is None:
        return 2
    try:
        result = render_preview(args.template, load_item(args.item), parameters, args.prefix)
    except (PreviewError, UnsupportedTemplate) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_preview(result, sys.stdout)
    return 0


def add_doctor(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``doctor``, when boto3 (the local extra) is installed; without it, a command that says so."""
    doctor = commands.add_parser("doctor", help="check what a deployed stack's first reminder needs (read-only)")
    try:
        from tapstack.operations import doctor as command
    except ImportError as error:
        reason = str(error)  # the exception's name is unbound once the except block ends
        doctor.set_defaults(run=lambda _: _missing_extra("doctor", reason))
        return
    command.add_arguments(doctor)
    doctor.set_defaults(run=command.run)


def add_operation(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str) -> None:
    """The operations command ``tapstack.operations.<name>``, when boto3 (the local extra) is installed;
    without it, a command that says so."""
    parser = commands.add_parser(name, help=summary)
    try:
        command = importlib.import_module(f"tapstack.operations.{name}")
    except ImportError as error:
        reason = str(error)  # the exception's name is unbound once the except block ends
        parser.set_defaults(run=lambda _: _missing_extra(name, reason))
        return
    command.add_arguments(parser)
    parser.set_defaults(run=command.run)


def _missing_extra(name: str, reason: str) -> int:
    print(f"error: {name} needs boto3: pip install 'tapstack[local]' ({reason})", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tapstack")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write (or --check) the CloudFormation template")
    for action in cli.build_parser()._actions[1:]:  # the same options as build.py
        build._add_action(action)
    run = commands.add_parser("simulate", help="run a scenario on the generated template, locally on moto")
    run.add_argument(
        "scenario", nargs="?", type=Path, help="scenario JSON, or a shipped scenario's name (default, messages)"
    )
    run.add_argument("--messages", action="store_true", help="print every message sent, as its recipient reads it")
    run.add_argument("--template", type=Path, default=cli.DEFAULT_OUTPUT, help="template to run (default %(default)s)")
    run.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="Name=value",
        help="override a template parameter (repeatable)",
    )
    shown = commands.add_parser(
        "preview", help="render one appointment's email and SMS as the template's handlers would, without AWS"
    )
    shown.add_argument("--item", type=Path, required=True, help="the appointment item (JSON or DynamoDB JSON)")
    shown.add_argument("--template", type=Path, default=cli.DEFAULT_OUTPUT, help="template (default %(default)s)")
    shown.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="Name=value",
        help="a template parameter's value, as deployed (repeatable)",
    )
    shown.add_argument("--prefix", help="which system, when the template holds several (their prefix)")
    add_doctor(commands)
    add_operation(commands, "backfill", "plan reminders for the appointments already in the table")
    add_operation(commands, "status", "reminders open, deferred, overdue, their outcomes and failures (read-only)")
    args = parser.parse_args(argv)
    if args.command == "build":
        return cli.run(args)
    if args.command == "preview":
        return preview(args)
    if args.command in ("doctor", "backfill", "status"):
        code: int = args.run(args)
        return code
    return simulate(args)


if __name__ == "__main__":
    sys.exit(main())
