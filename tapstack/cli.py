"""``python build.py`` and ``python -m tapstack build``: write or check the generated template."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from tapstack.render import to_json, to_yaml
from tapstack.stack import build_template

DEFAULT_OUTPUT = Path("lib/TapStack.yml")


def render(fmt: str = "yaml") -> str:
    """The stand-alone template as text; the same bytes on every run."""
    template = build_template()
    return to_json(template) if fmt == "json" else to_yaml(template)


def build_parser(prog: str = "build.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Write the appointment-reminder CloudFormation template.")
    parser.add_argument("--output", type=Path, default=None, help=f"where to write it (default {DEFAULT_OUTPUT})")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml", help="template format (default yaml)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and show the difference when the file is not up to date")
    return parser


def run(args: argparse.Namespace) -> int:
    output: Path = args.output or (DEFAULT_OUTPUT if args.format == "yaml" else DEFAULT_OUTPUT.with_suffix(".json"))
    text = render(args.format)
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else ""
        if current == text:
            print(f"{output} is up to date")
            return 0
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(), f"{output} (committed)",
                                    f"{output} (fresh build)", lineterm="", n=1)
        print(f"{output} is stale: run python build.py and commit it", file=sys.stderr)
        print("\n".join(list(diff)[:60]), file=sys.stderr)
        return 1
    if output.exists() and output.is_dir():
        print(f"error: --output {output} is a directory; give a file path", file=sys.stderr)
        return 2
    if not output.parent.is_dir():
        print(f"error: --output {output}: directory {output.parent} does not exist", file=sys.stderr)
        return 2
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output} ({len(text.encode())} bytes)")
    return 0


def main(argv: list[str] | None = None, prog: str = "build.py") -> int:
    return run(build_parser(prog).parse_args(argv))
