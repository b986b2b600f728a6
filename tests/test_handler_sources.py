"""The handlers as CloudFormation inlines them: one ``index.py`` each, standard library and boto3 only,
small, debuggable, and exactly what the template holds."""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path
from typing import Any

import pytest

import tapstack.sources as sources
from tapstack.local import load_template
from tapstack.local.resolve import Resolver
from tapstack.sources import HANDLER_MODULES, handler_parts, handler_path, handler_source, minify

#: What the Lambda Python runtime provides besides the standard library.
RUNTIME_PACKAGES = {"boto3", "botocore"}
HANDLERS = sorted(HANDLER_MODULES.values())
ALL_MODULES = sorted(path.stem for path in handler_path("common").parent.glob("*.py") if path.stem != "__init__")


def imported_modules(source: str) -> set[str]:
    """Top-level packages imported with absolute imports."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add((node.module or "").split(".")[0])
    return modules


def relative_imports(source: str) -> list[ast.ImportFrom]:
    return [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom) and node.level]


@pytest.mark.parametrize("module", ALL_MODULES)
def test_handler_modules_import_only_the_standard_library_boto3_and_their_siblings(module: str) -> None:
    source = handler_path(module).read_text(encoding="utf-8")
    outside = imported_modules(source) - RUNTIME_PACKAGES - set(sys.stdlib_module_names)
    assert outside == set(), f"{module} imports {sorted(outside)}: the inlined code cannot bring them"
    for node in relative_imports(source):
        assert node.level == 1 and f"{node.module}" in ALL_MODULES, "only a sibling module can be bundled"


@pytest.mark.parametrize("module", HANDLERS)
def test_the_inlined_code_stands_alone(module: str) -> None:
    inlined = handler_source(module)
    compile(inlined, f"<{module}>/index.py", "exec")
    assert relative_imports(inlined) == [], "index.py is alone in its package"
    outside = imported_modules(inlined) - RUNTIME_PACKAGES - set(sys.stdlib_module_names)
    assert outside == set()
    assert "handler" in {node.name for node in ast.parse(inlined).body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("module", HANDLERS)
def test_the_inlined_code_keeps_what_a_console_reader_needs(module: str) -> None:
    """Minified, but every function and class a stack trace names and every log event keep their
    names, every module-level constant is still there (by its short name); no docstring, comment, tab
    or trailing space is left."""
    inlined = handler_source(module)
    renames = sources.constant_renames()
    tree = ast.parse(inlined)
    for part in handler_parts(module):
        source = ast.parse(handler_path(part.module).read_text(encoding="utf-8"))
        defined = {n.name for n in source.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assigned = {
            t.id for n in source.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        kept = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        kept_names = {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        assert defined <= kept
        assert {renames.get(name, name) for name in assigned} <= kept_names
        events = {
            node.args[1].value
            for node in ast.walk(source)
            if isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "log"
            and isinstance(node.args[1], ast.Constant)
        }
        assert all(f"'{event}'" in inlined for event in events)
    tokens = tokenize.generate_tokens(io.StringIO(inlined).readline)
    assert not [token for token in tokens if token.type == tokenize.COMMENT]
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
            assert ast.get_docstring(node) is None
    assert all(line == line.rstrip() and "\t" not in line for line in inlined.splitlines())
    documented = sum(len(handler_path(part.module).read_text(encoding="utf-8")) for part in handler_parts(module))
    assert len(inlined) < documented / 2


def test_the_template_holds_each_handler_exactly(template_data: dict[str, Any]) -> None:
    """Resolved as CloudFormation resolves it (shared modules from the mappings), each function's
    ZipFile is the handler's index.py, byte for byte."""
    resolver = Resolver(template_data, {}, {}, ref=lambda name: name, get_att=lambda name, attribute: name)
    for logical_id, module in HANDLER_MODULES.items():
        zip_file = template_data["Resources"][logical_id]["Properties"]["Code"]["ZipFile"]
        assert resolver.resolve(zip_file) == handler_source(module)


def test_a_module_shared_by_several_functions_is_stored_once(template_text: str) -> None:
    template = load_template(template_text)
    shared = template["Mappings"]["HandlerModules"]["Python"]
    assert {"common", "channelMarks"} <= set(shared)
    for key in ("common", "channelMarks"):
        code = shared[key]
        assert template_text.count(code.splitlines()[-1]) == 1, f"{key} is written once"


# ---- the bundler ---------------------------------------------------------------------------


@pytest.fixture
def handlers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty handlers folder that the build reads instead of the real one."""
    monkeypatch.setattr(sources, "handler_path", lambda module: tmp_path / f"{module}.py")
    return tmp_path


def write(folder: Path, module: str, source: str) -> None:
    (folder / f"{module}.py").write_text(source, encoding="utf-8")


def test_siblings_run_first_once_and_in_order(handlers: Path) -> None:
    write(handlers, "base", '"""Base."""\nimport json\nSEP = ","\n')
    write(handlers, "middle", "from .base import SEP\nimport json\n\ndef join(items):\n    return SEP.join(items)\n")
    write(
        handlers, "main", "from .base import SEP\nfrom .middle import join\n\ndef handler(e, c):\n    return join(e)\n"
    )

    parts = handler_parts("main")

    assert [(part.module, part.shared) for part in parts] == [("base", True), ("middle", True), ("main", False)]
    namespace: dict[str, Any] = {}
    exec(handler_source("main"), namespace)  # noqa: S102 - the bundle under test
    assert namespace["handler"](["a", "b"], None) == "a,b"


@pytest.mark.parametrize(
    ("sibling", "main", "message"),
    [
        ("X = 1\n", "from .base import Y\n", "Y is not defined in base.py"),
        ("X = 1\n", "from .base import X as Z\n", "cannot be renamed"),
        ("X = 1\n", "from .missing import X\n", "no sibling module"),
        ("X = 1\n", "from ..base import X\n", "only a sibling"),
        ("def log():\n    pass\n", "from .base import log\n\ndef log():\n    pass\n", "log is also defined"),
        ("import os\nX = 1\n", "from .base import X\nimport os\nimport json\n", None),
    ],
)
def test_the_bundler_refuses_what_one_file_cannot_hold(
    handlers: Path, sibling: str, main: str, message: str | None
) -> None:
    write(handlers, "base", sibling)
    write(handlers, "main", main)
    if message is None:
        handler_parts("main")  # the same import in two modules is the same name
        return
    with pytest.raises(ValueError, match=message):
        handler_parts("main")


def test_the_minifier_keeps_strings_and_drops_typing_only_imports() -> None:
    source = (
        '"""Doc."""\nfrom typing import Any, Callable\n\n\ndef f(value: Any) -> str:\n'
        '    """Doc."""\n    text = """line\n\n\tkept"""  # why\n    return text + value\n'
    )
    minified = minify(source)
    assert "typing" not in minified and "Doc." not in minified and "# why" not in minified
    namespace: dict[str, Any] = {}
    exec(minified, namespace)  # noqa: S102 - the code under test
    assert namespace["f"]("!") == "line\n\n\tkept!"


# ---- positional-only parameters: what the minifier may then rename ----------------------------

POSITIONAL_SOURCE = """
def plan(reminder_id, offset, raw=None, cut=True):
    return f"{reminder_id}#{offset}", raw, cut

def write(reminder_id, expression, **values):
    return reminder_id, expression, values

def handler(event, context):
    return plan(event, 1, cut=False), write("a", "b", **{"x": 1})

class Run:
    def __init__(self, event):
        self.event = event
"""


def signature(code: str, name: str) -> tuple[list[str], list[str]]:
    [function] = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef) and n.name == name]
    return [a.arg for a in function.args.posonlyargs], [a.arg for a in function.args.args]


def test_parameters_no_call_names_become_positional_only() -> None:
    calls = sources.Calls(keywords=frozenset({"cut"}), splatted=frozenset({"write"}))

    changed = sources.positional_only(POSITIONAL_SOURCE, calls)

    assert signature(changed, "plan") == (["reminder_id", "offset", "raw"], ["cut"])
    assert signature(changed, "write") == ([], ["reminder_id", "expression"]), "called with **: any name may bind"
    assert signature(changed, "handler") == ([], ["event", "context"])
    assert signature(changed, "__init__") == ([], ["self", "event"])
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    exec(compile(POSITIONAL_SOURCE, "before", "exec"), before)  # noqa: S102 - the test's own code
    exec(compile(changed, "after", "exec"), after)  # noqa: S102
    assert after["handler"]("e", None) == before["handler"]("e", None)


def test_the_handlers_calls_are_read_from_every_module() -> None:
    calls = sources._calls()

    assert "cut" in calls.keywords  # process_appointments: text(raw, "customerEmail", 254, cut=False)
    assert "conditional_update" in calls.splatted  # called with **values from the processor


def test_the_minifier_renames_positional_only_parameters() -> None:
    code = minify(
        sources.positional_only(
            "def plan(reminder_id, offset):\n    return reminder_id * offset\n", sources.Calls(frozenset(), frozenset())
        )
    )

    assert "reminder_id" not in code and "def plan(" in code


def test_constants_get_one_short_name_in_every_module() -> None:
    """Constants and clients get short names, the same in every part; functions, classes, imports,
    ``handler`` and any name a function binds keep theirs."""
    renames = sources.constant_renames()
    assert {"REMINDERS_TABLE", "dynamodb", "CHANNELS"} <= renames.keys()
    assert not {"handler", "log", "RetryableError", "boto3", "os"} & renames.keys()
    assert len(set(renames.values())) == len(renames)
    assert all(len(short) == 2 and short.endswith("_") for short in renames.values())
    for module in HANDLERS:
        inlined = handler_source(module)
        assert not any(f"{name}" in _names(inlined) for name in renames)


def test_a_constant_shadowed_inside_a_function_keeps_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "common.py").write_text(
        "TABLE = 'x'\nLIMIT = 3\nSIZE = 2\n\ndef read(LIMIT):\n    return TABLE, LIMIT\n\n"
        "class Box:\n    SIZE = 5\n\ndef size():\n    return SIZE, Box.SIZE\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sources, "handler_path", lambda module: tmp_path / f"{module}.py")
    renames = sources.constant_renames()
    assert renames == {"TABLE": "a_"}
    namespace: dict[str, Any] = {}
    exec(sources.renamed((tmp_path / "common.py").read_text(encoding="utf-8"), renames), namespace)  # noqa: S102
    assert namespace["read"](5) == ("x", 5)
    assert namespace["size"]() == (2, 5), "a class attribute keeps its name, and so does the constant"


def _names(code: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Name)}


@pytest.mark.parametrize("module", HANDLERS)
def test_the_parts_of_one_index_py_bind_no_module_level_name_twice(module: str) -> None:
    """After minifying, no part of a handler's index.py binds a module-level name that another part
    binds too (one would replace the other for both), except the same import."""
    bound: dict[str, tuple[str, str]] = {}
    for part in handler_parts(module):
        for statement in ast.parse(part.code).body:
            for name, meaning in sources._bindings(part.module, statement):
                if name in bound and not (meaning.startswith(("import", "from")) and bound[name][1] == meaning):
                    raise AssertionError(f"{name} bound by {bound[name][0]} and {part.module}")
                bound.setdefault(name, (part.module, meaning))


def hoisted(code: str) -> list[str]:
    """The names of the hoisted literals: module-level, first, each bound to a constant."""
    names = []
    for statement in ast.parse(code).body:
        if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)):
            break
        names += [target.id for target in statement.targets if isinstance(target, ast.Name)]
    return [name for name in names if name.startswith("_")]


def test_a_shared_part_names_its_hoisted_literals_apart_from_every_handler_s_own() -> None:
    email, sms = handler_parts("send_email"), handler_parts("send_sms")
    marks = next(part for part in email if part.module == "channel_marks")
    assert marks in sms, "its code is the same in both functions: the template stores it once"
    assert hoisted(marks.code) and all(name[1:].isdigit() for name in hoisted(marks.code))
    own = handler_parts("update_status")[-1]
    assert hoisted(own.code) and all(name[1:].isalpha() for name in hoisted(own.code))


def test_two_shared_parts_that_hoist_literals_run_together(handlers: Path) -> None:
    """Both siblings repeat literals, so python-minifier names them ``_A``... in each; the bundle
    numbers them apart (``_0``...), and each function still reads its own."""
    for module, word in (("first", "alpha"), ("second", "omega")):
        write(
            handlers,
            module,
            f"def {module}():\n    return ['{word}-{word}', '{word}-{word}']\n\n\n"
            f"def {module}_again():\n    return ['{word}-{word}', '{word}-{word}']\n",
        )
    write(
        handlers,
        "main",
        "from .first import first, first_again\nfrom .second import second\n\n"
        "def own():\n    return ['own-own', 'own-own']\n\n\n"
        "def handler(e, c):\n    return [first(), first_again(), second(), own(), ['own-own', 'own-own']]\n",
    )

    parts = handler_parts("main")

    names = [hoisted(part.code) for part in parts]
    assert names == [["_0"], ["_1"], ["_A"]]
    namespace: dict[str, Any] = {}
    exec(handler_source("main"), namespace)  # noqa: S102 - the bundle under test
    alpha, omega, own = ["alpha-alpha"] * 2, ["omega-omega"] * 2, ["own-own"] * 2
    assert namespace["handler"](None, None) == [alpha, alpha, omega, own, own]


def test_renaming_hoisted_literals_refuses_to_change_a_string() -> None:
    with pytest.raises(ValueError, match="changed its code"):
        sources._renamed_minified("_A='x';print('_A',_A)\n", {"_A": "_0"})
