"""The Lambda handlers' source as the template inlines it: bundled into one ``index.py``, minified.

A handler in ``handlers/`` is ordinary, documented code and may import its sibling modules
(``from .channel_marks import deliver_message``). CloudFormation's ``Code.ZipFile`` makes a single
``index.py``, so the build runs each sibling module first, in the same file (:func:`handler_parts`).
CloudFormation reads at most 51,200 bytes of template from a file, so each part is minified with
python-minifier (:func:`minify`), within what keeps the code debuggable in the Lambda console, and
a part that several functions share is stored once in the template (``tapstack.functions``).
"""

from __future__ import annotations

import ast
import functools
import re
import string
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import python_minifier

#: Handler module of each function, by the function's logical ID (without prefix).
HANDLER_MODULES = {
    "AppointmentProcessorFunction": "process_appointments",
    "EmailSenderFunction": "send_email",
    "SmsSenderFunction": "send_sms",
    "StatusUpdaterFunction": "update_status",
}

#: What the minifier may do. It removes docstrings, comments, annotations and blank lines, joins the
#: simple statements of a block with ``;``, shortens whitespace, indents by one character and gives
#: local variables short names (``result`` becomes ``A``). It keeps what a reader of a stack trace or
#: a log line in the Lambda console needs: every statement, in its order; every module-level function
#: and class (the functions a stack trace names, ``handler``); every string where it is used (log
#: events, error codes, expressions). Its own renamer must keep module-level names: the parts of one
#: ``index.py`` share its namespace, and a renamer working part by part would give two of them the
#: same short name. Constants and clients get short names from :func:`constant_renames` instead,
#: one mapping for every part.
MINIFIER_OPTIONS: dict[str, Any] = dict(
    remove_literal_statements=True,  # docstrings
    remove_annotations=True,
    rename_locals=True,  # no log line and no stack-trace frame shows a local's name
    rename_globals=False,
    hoist_literals=True,  # repeated literals named once (see minify())
    remove_asserts=False,
    remove_debug=False,
    prefer_single_line=True,  # module-level simple statements too are joined with ";"
    constant_folding=False,  # 24 * 3600 stays as written
)

_FUTURE = "__future__"
#: Modules imported for annotations only: once the minifier has removed the annotations, what is
#: imported from them and no longer used is dropped too.
_TYPING_MODULES = ("typing", "collections.abc")


def handler_path(module: str) -> Path:
    """Where a handler module's file is (``handlers/<module>.py`` in a checkout)."""
    return Path(str(resources.files("tapstack.handlers").joinpath(f"{module}.py")))


@dataclass(frozen=True)
class Part:
    """One module of a handler's ``index.py``, minified: a sibling it imports, or its own code."""

    module: str
    code: str
    shared: bool


def handler_parts(module: str) -> list[Part]:
    """The modules of the handler's ``index.py`` in the order it runs them: each sibling module the
    handler imports (recursively), once, before the module that imports it, then the handler's own
    code without those imports.

    Raises ``ValueError`` when a name imported from a sibling is not defined there, or when two
    modules define the same name differently (in one file, one would overwrite the other).
    """
    bundler = _Bundler()
    bundler.collect(module)
    calls = _calls()
    renames = constant_renames()
    literals = _shared_literal_names(calls, renames)
    parts = []
    for name, source in bundler.parts:
        code = minify(positional_only(renamed(source, renames), calls))
        if name != module:
            code = _renamed_minified(code, literals[name])
        parts.append(Part(name, code, shared=name != module))
    return parts


def _shared_literal_names(calls: Calls, renames: dict[str, str]) -> dict[str, dict[str, str]]:
    """For each shared module (one that a sibling imports), the names its hoisted literals get in
    the template: python-minifier names them ``_A``, ``_B``... in every module alike, so a shared
    module's become ``_0``, ``_1``..., numbered across the shared modules in name order. No two
    parts of one ``index.py`` then bind the same name (a later part's ``_A`` would replace an
    earlier part's for that part's functions too), and each module's code is the same in every
    handler that runs it (it is stored once)."""
    shared = sorted(
        {
            node.module or ""
            for path in _handler_files()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom) and node.level == 1
        }
    )
    number = 0
    names: dict[str, dict[str, str]] = {}
    for module in shared:
        bundler = _Bundler()
        bundler.collect(module)
        code = minify(positional_only(renamed(bundler.parts[-1][1], renames), calls))
        uses = Counter(node.id for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Name))
        names[module] = {}
        for name in sorted(_hoisted(code), key=lambda name: -uses[name]):  # the most used get one digit
            names[module][name] = f"_{number}"
            number += 1
    return names


def _hoisted(code: str) -> list[str]:
    """The names python-minifier gave the literals it hoisted: bound at module level, before any
    other statement, to a string (``_A='appointmentTime'``) or a constant (``_B=None``)."""
    names = []
    for statement in ast.parse(code).body:
        if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)):
            break
        names += [target.id for target in statement.targets if isinstance(target, ast.Name)]
    return [name for name in names if re.fullmatch("_[A-Za-z]+", name)]


def _renamed_minified(code: str, names: dict[str, str]) -> str:
    """Minified ``code`` with each name in ``names`` renamed, wherever it is bound or read (f-strings
    included). Raises ``ValueError`` when that changed anything else (the name in a string)."""
    if not names:
        return code
    pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, names)) + r")(?!\w)")
    result = pattern.sub(lambda found: names[found.group(1)], code)
    expected = ast.parse(code)
    for node in ast.walk(expected):
        if isinstance(node, ast.Name) and node.id in names:
            node.id = names[node.id]
    if ast.dump(ast.parse(result)) != ast.dump(expected):
        raise ValueError("renaming the hoisted literals of a shared part changed its code")
    return result


def handler_source(module: str) -> str:
    """The handler exactly as Lambda runs it: its ``index.py``, a blank line between its parts."""
    return "\n".join(part.code for part in handler_parts(module))


class _Bundler:
    """Collects a handler's modules in run order, checking that one namespace can hold them all."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str]] = []  # (module, its source without its sibling imports)
        self.definitions: dict[str, tuple[str, str]] = {}  # name → (module, what it is bound to)

    def collect(self, module: str) -> None:
        text = handler_path(module).read_text(encoding="utf-8")
        dropped: set[int] = set()
        for node in ast.parse(text).body:
            span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                sibling = node.module or ""
                self._check_imported_names(module, sibling, node)
                if all(name != sibling for name, _ in self.parts):
                    self.collect(sibling)
                dropped.update(span)
            elif isinstance(node, ast.ImportFrom) and node.level > 1:
                raise ValueError(
                    f"handlers/{module}.py:{node.lineno}: only a sibling (from .x import y) can be bundled"
                )
            elif isinstance(node, ast.ImportFrom) and node.module == _FUTURE:
                dropped.update(span)  # must come first in a file; annotations are removed anyway
            else:
                self._define(module, node)
        kept = [line for number, line in enumerate(text.splitlines(), start=1) if number not in dropped]
        self.parts.append((module, "\n".join(kept) + "\n"))

    def _check_imported_names(self, module: str, sibling: str, node: ast.ImportFrom) -> None:
        path = handler_path(sibling)
        if not path.is_file():
            raise ValueError(f"handlers/{module}.py:{node.lineno}: no sibling module handlers/{sibling}.py")
        statements = ast.parse(path.read_text(encoding="utf-8")).body
        defined = {name for statement in statements for name, _ in _bindings(sibling, statement)}
        for alias in node.names:
            if alias.name not in defined:
                raise ValueError(f"handlers/{module}.py:{node.lineno}: {alias.name} is not defined in {sibling}.py")
            if alias.asname and alias.asname != alias.name:
                raise ValueError(f"handlers/{module}.py:{node.lineno}: a bundled name cannot be renamed (as)")

    def _define(self, module: str, node: ast.stmt) -> None:
        for name, meaning in _bindings(module, node):
            earlier = self.definitions.get(name)
            if earlier is not None and earlier[1] != meaning:
                raise ValueError(
                    f"handlers/{module}.py:{node.lineno}: {name} is also defined by handlers/{earlier[0]}.py;"
                    " in one index.py one would overwrite the other: rename one"
                )
            self.definitions.setdefault(name, (module, meaning))


def _bindings(module: str, node: ast.stmt) -> list[tuple[str, str]]:
    """(name, what it is bound to) for each module-level name a statement binds. Two imports of the
    same thing bind it the same way; any other definition is its own module's."""
    if isinstance(node, ast.Import):
        return [((alias.asname or alias.name).split(".")[0], f"import {alias.name}") for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [(alias.asname or alias.name, f"from {node.module} import {alias.name}") for alias in node.names]
    own = f"{module}:{node.lineno}"
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [(node.name, own)]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    return [(name.id, own) for target in targets for name in ast.walk(target) if isinstance(name, ast.Name)]


@dataclass(frozen=True)
class Calls:
    """What the calls in all the handler modules do with names: the parameter names some call
    passes as keywords (``cut=False``), and the functions some call passes ``**mapping``."""

    keywords: frozenset[str]
    splatted: frozenset[str]


def positional_only(source: str, calls: Calls) -> str:
    """The source with each function's leading parameters made positional-only (``def f(a, b, /)``)
    where no call could pass them by name: a parameter whose name no call passes as a keyword, of a
    function that no call passes ``**mapping``. The same program; and the minifier may then rename
    the parameter itself (``def f(A,B,/)``) instead of keeping its name in the signature and copying
    it into a short one (``def f(reminder_id):A=reminder_id``). Left alone: ``handler`` (Lambda's
    entry point), methods, and functions that already have positional-only parameters."""
    tree = ast.parse(source)
    methods = {id(function) for node in ast.walk(tree) if isinstance(node, ast.ClassDef) for function in node.body}
    for function in ast.walk(tree):
        if (
            not isinstance(function, ast.FunctionDef)
            or function.name in calls.splatted | {"handler"}
            or id(function) in methods
            or function.args.posonlyargs
        ):
            continue
        arguments = function.args
        count = 0
        while count < len(arguments.args) and arguments.args[count].arg not in calls.keywords:
            count += 1
        arguments.posonlyargs, arguments.args = arguments.args[:count], arguments.args[count:]
    return ast.unparse(tree)


def _calls() -> Calls:
    keywords: set[str] = set()
    splatted: set[str] = set()
    for path in _handler_files():
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(call, ast.Call):
                keywords.update(keyword.arg for keyword in call.keywords if keyword.arg)
                if any(keyword.arg is None for keyword in call.keywords):
                    function = call.func
                    splatted.add(function.id if isinstance(function, ast.Name) else getattr(function, "attr", ""))
    return Calls(frozenset(keywords), frozenset(splatted))


def constant_renames() -> dict[str, str]:
    """A short name (``a_``, ``b_``, ...) for each module-level constant or client of the handlers
    (``REMINDERS_TABLE``, ``dynamodb``): a name bound at module level by an assignment only, in any
    handler module, and bound nowhere inside a function or a class body (no parameter, local, loop
    variable or class attribute of that name could be confused with it). One mapping for every
    module, so the parts of one ``index.py`` that share a constant agree on its short name; the most
    used names get the first short names (a change of the handlers may reorder them: the build
    regenerates the template). Functions, classes, ``handler`` and imports keep their names: they
    are what a stack trace shows. (The short names end with ``_``: python-minifier names what it
    hoists ``_A``, ``_B``..., see :func:`minify`.)
    """
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in _handler_files()]
    assigned: set[str] = set()
    kept: set[str] = set()
    for tree in trees:
        for statement in tree.body:
            names = {name for name, _ in _bindings("", statement)}
            if isinstance(statement, (ast.Assign, ast.AnnAssign)):
                assigned |= names
            else:
                kept |= names
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                kept |= _names_bound_inside(node)
            elif isinstance(node, ast.ClassDef):  # a class attribute is read by its name (run.token)
                kept |= {name for statement in node.body for name, _ in _bindings("", statement)}
    constants = assigned - kept
    used = Counter(
        node.id for tree in trees for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id in constants
    )
    identifiers = {getattr(node, "id", None) or getattr(node, "arg", None) for tree in trees for node in ast.walk(tree)}
    short = (f"{letter}_" for letter in string.ascii_letters if f"{letter}_" not in identifiers)
    return {name: next(short) for name, _ in sorted(used.items(), key=lambda item: (-item[1], item[0]))}


def _names_bound_inside(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Every name a function binds or declares: parameters, assignment, loop, ``with`` and ``except``
    targets, comprehension variables, ``global`` and ``nonlocal`` names."""
    names = {argument.arg for argument in ast.walk(function.args) if isinstance(argument, ast.arg)}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def renamed(source: str, renames: dict[str, str]) -> str:
    """The source with each constant named in ``renames`` given its short name, where it is bound
    and wherever it is read (f-strings included). The same program: :func:`constant_renames` only
    names constants that nothing inside a function binds."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in renames:
            node.id = renames[node.id]
    return ast.unparse(tree)


def _handler_files() -> list[Path]:
    return sorted(handler_path("common").parent.glob("*.py"))


@functools.cache
def minify(source: str) -> str:
    """The code made small (``MINIFIER_OPTIONS``), indented with spaces for the YAML block.

    Each literal the code uses several times is named once, at module level (python-minifier's
    ``hoist_literals``: ``_A='appointmentTime'``); the literal is still in the code, next to its
    name. python-minifier names them ``_A``, ``_B``... in every module alike: :func:`handler_parts`
    renames a shared part's (``_0``, ``_1``...), so that a handler's own part keeps these. The
    constants' short names (:func:`constant_renames`) end with ``_`` instead, so they never meet.

    python-minifier indents with tabs; a tab would make the YAML writer give up the readable ``|``
    block for one escaped line, so each leading tab becomes one space (the same program).
    """
    minified: str = python_minifier.minify(source, **MINIFIER_OPTIONS)
    lines = []
    for line in minified.splitlines():
        depth = len(line) - len(line.lstrip("\t"))
        lines.append(" " * depth + line[depth:])
    result = _without_unused_typing_imports("\n".join(lines) + "\n")
    if ast.dump(ast.parse(result)) != ast.dump(ast.parse(_without_unused_typing_imports(minified))):
        raise ValueError("indenting the minified handler with spaces changed its code")
    return result


def _without_unused_typing_imports(code: str) -> str:
    """``code`` without the names it imports from ``_TYPING_MODULES`` and never uses: each such
    import statement is cut out exactly (its own span, and a ``;`` joining it to the next), or
    rewritten with the names still used."""
    tree = ast.parse(code)
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    lines = code.splitlines()
    emptied: set[int] = set()
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module in _TYPING_MODULES]
    for node in reversed(imports):  # from the end, so the earlier positions stay right
        if node.lineno != node.end_lineno or node.end_col_offset is None:
            raise ValueError(f"line {node.lineno}: an import over several lines is not expected here")
        kept = [alias for alias in node.names if (alias.asname or alias.name) in used]
        names = ",".join(alias.name + (f" as {alias.asname}" if alias.asname else "") for alias in kept)
        line = lines[node.lineno - 1]
        before, after = line[: node.col_offset], line[node.end_col_offset :]
        if kept:
            lines[node.lineno - 1] = f"{before}from {node.module} import {names}{after}"
        elif after.startswith(";"):
            lines[node.lineno - 1] = before + after[1:]
        else:
            lines[node.lineno - 1] = before.rstrip(";")
        if not lines[node.lineno - 1].strip():
            emptied.add(node.lineno)
    return "\n".join(line for number, line in enumerate(lines, start=1) if number not in emptied) + "\n"
