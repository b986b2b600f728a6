"""``python build.py`` and ``python -m tapstack build``: write or check the generated template."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from tapstack.budget import TEMPLATE_BODY_LIMIT, Budget
from tapstack.diagrams import embed_in_readme, workflow_markdown
from tapstack.render import to_json, to_yaml
from tapstack.stack import build_template

DEFAULT_OUTPUT = Path("lib/TapStack.yml")
DOCS = Path("docs/workflow.md")
README = Path("README.md")


def render(fmt: str = "yaml") -> str:
    """The stand-alone template as text; the same bytes on every run."""
    template = build_template()
    return to_json(template) if fmt == "json" else to_yaml(template)


def outputs(args: argparse.Namespace) -> dict[Path, str]:
    """Every file the build writes: the template, and with the default output also the diagrams
    (``docs/workflow.md`` and the section of README.md between its diagram marks)."""
    output: Path = args.output or (DEFAULT_OUTPUT if args.format == "yaml" else DEFAULT_OUTPUT.with_suffix(".json"))
    files = {output: render(args.format)}
    if args.output is None:
        template = build_template().to_dict()
        files[DOCS] = workflow_markdown(template)
        if README.is_file():
            files[README] = embed_in_readme(README.read_text(encoding="utf-8"), template)
    return files


def build_parser(prog: str = "build.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Write the appointment-reminder CloudFormation template.")
    parser.add_argument("--output", type=Path, default=None, help=f"where to write it (default {DEFAULT_OUTPUT})")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml", help="template format (default yaml)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and show the difference when the file is not up to date",
    )
    return parser


def report_size(path: Path, text: str) -> bool:
    """Print the template's size, headroom and largest parts (against the file as it is now);
    False when it is over what CloudFormation reads without S3."""
    before = Budget.of(path.read_text(encoding="utf-8")) if path.is_file() else None
    budget = Budget.of(text)
    print("\n".join(budget.report(str(path), before)))
    if budget.headroom >= 0:
        return True
    print(
        f"error: {path} is {budget.size:,} bytes, over the {TEMPLATE_BODY_LIMIT:,} that "
        "aws cloudformation deploy --template-file sends without an S3 bucket",
        file=sys.stderr,
    )
    return False


def run(args: argparse.Namespace) -> int:
    files = outputs(args)
    template_path = next(iter(files))
    if args.format == "yaml" and not report_size(template_path, files[template_path]):
        return 1
    if args.check:
        stale = 0
        for path, text in files.items():
            current = path.read_text(encoding="utf-8") if path.is_file() else ""
            if current == text:
                print(f"{path} is up to date")
                continue
            stale += 1
            diff = difflib.unified_diff(
                current.splitlines(),
                text.splitlines(),
                f"{path} (committed)",
                f"{path} (fresh build)",
                lineterm="",
                n=1,
            )
            print(f"{path} is stale: run python build.py and commit it", file=sys.stderr)
            print("\n".join(list(diff)[:60]), file=sys.stderr)
        return 1 if stale else 0
    for path in files:
        if path.is_dir():
            print(f"error: --output {path} is a directory; give a file path", file=sys.stderr)
            return 2
        if not path.parent.is_dir():
            print(f"error: --output {path}: directory {path.parent} does not exist", file=sys.stderr)
            return 2
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({len(text.encode())} bytes)")
    return 0


def main(argv: list[str] | None = None, prog: str = "build.py") -> int:
    return run(build_parser(prog).parse_args(argv))
