"""The Lambda handlers' source, read from the ``handlers`` package and inlined as ``ZipFile``."""

from __future__ import annotations

import ast
import io
import tokenize
from importlib import resources
from pathlib import Path

#: Handler module of each function, by the function's logical ID (without prefix).
HANDLER_MODULES = {
    "AppointmentProcessorFunction": "process_appointments",
    "EmailSenderFunction": "send_email",
    "SmsSenderFunction": "send_sms",
    "StatusUpdaterFunction": "update_status",
}

_DEFINITIONS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_END = getattr(tokenize, "FSTRING_END", -1)


def handler_path(module: str) -> Path:
    """Where the handler's file is (``handlers/<module>.py`` in a checkout)."""
    return Path(str(resources.files("tapstack.handlers").joinpath(f"{module}.py")))


def handler_source(module: str) -> str:
    """The handler as the template inlines it (see :func:`strip_documentation`)."""
    path = handler_path(module)
    source = path.read_text(encoding="utf-8")
    for number, line in enumerate(source.splitlines(), start=1):
        # Trailing whitespace or a tab makes the YAML writer fall back to one escaped line.
        if line != line.rstrip() or "\t" in line:
            raise ValueError(f"{path}:{number}: trailing whitespace or a tab breaks the inlined code")
    return compact(source)


def compact(source: str) -> str:
    """The handler as inlined: documentation stripped, each block indented by one space.

    Raises ``ValueError`` if the result is not the same program (its syntax tree differs).
    """
    result = reindent(strip_documentation(source), width=1)
    if ast.dump(_without_docstrings(ast.parse(source))) != ast.dump(ast.parse(result)):
        raise ValueError("compacting the handler changed its code")
    return result


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, _DEFINITIONS) and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:]
    return tree


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def reindent(source: str, width: int = 2) -> str:
    """Each block indented by ``width`` spaces. A continuation line moves with the statement it
    continues; the inside of a multi-line string stays as it is."""
    lines = source.splitlines()
    shift_of: dict[int, int] = {}  # line number → spaces to take off its start
    inside_strings: set[int] = set()
    depth, shift, statement_starts = 0, 0, True
    f_string_starts: list[int] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.INDENT:
            depth += 1
        elif token.type == tokenize.DEDENT:
            depth -= 1
        elif token.type not in (tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER):
            row = token.start[0]
            if token.type == tokenize.STRING and token.end[0] > row:
                inside_strings.update(range(row + 1, token.end[0] + 1))
            elif token.type == _FSTRING_START:
                f_string_starts.append(row)
            elif token.type == _FSTRING_END:
                inside_strings.update(range(f_string_starts.pop() + 1, token.end[0] + 1))
            if row not in shift_of:
                if statement_starts:
                    shift = token.start[1] - depth * width
                shift_of[row] = shift
            statement_starts = token.type == tokenize.NEWLINE
    result = []
    for number, line in enumerate(lines, start=1):
        if number not in inside_strings:
            line = line[min(shift_of.get(number, 0), len(line) - len(line.lstrip(" "))) :]
        result.append(line)
    return "\n".join(result) + "\n"


def strip_documentation(source: str) -> str:
    """The same code without docstrings, comments and blank lines.

    CloudFormation accepts at most 51,200 bytes of template from a file; the documented source
    stays in ``handlers/``. Works line by line on the tokens (not ``ast.unparse``) so that the
    result is the same on every Python version and keeps the code's own formatting.
    """
    tree = ast.parse(source)
    dropped: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _DEFINITIONS) or not node.body:
            continue
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            if len(node.body) == 1:
                raise ValueError(f"line {first.lineno}: a body that is only a docstring would be left empty")
            dropped.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    comment_at: dict[int, int] = {}
    inside_strings: set[int] = set()
    f_string_starts: list[int] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comment_at[token.start[0]] = token.start[1]
        elif token.type == tokenize.STRING and token.end[0] > token.start[0]:
            inside_strings.update(range(token.start[0] + 1, token.end[0] + 1))
        elif token.type == _FSTRING_START:  # Python 3.12+ splits f-strings into several tokens
            f_string_starts.append(token.start[0])
        elif token.type == _FSTRING_END:
            inside_strings.update(range(f_string_starts.pop() + 1, token.end[0] + 1))
    kept: list[str] = []
    for number, line in enumerate(source.splitlines(), start=1):
        if number in dropped:
            continue
        if number in inside_strings:
            kept.append(line)
            continue
        if number in comment_at:
            line = line[: comment_at[number]].rstrip()
        if line.strip():
            kept.append(line)
    return "\n".join(kept) + "\n"
