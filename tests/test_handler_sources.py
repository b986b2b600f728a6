"""The handlers as CloudFormation inlines them: standard library and boto3 only, the same program."""

from __future__ import annotations

import ast
import io
import sys
import tokenize

import pytest

from tapstack.sources import HANDLER_MODULES, compact, handler_path, handler_source, reindent, strip_documentation

#: What the Lambda Python runtime provides besides the standard library.
RUNTIME_PACKAGES = {"boto3", "botocore"}


def imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import cannot work in an inlined index.py"
            modules.add((node.module or "").split(".")[0])
    return modules


@pytest.mark.parametrize("module", sorted(HANDLER_MODULES.values()))
def test_handlers_import_only_the_standard_library_and_boto3(module: str) -> None:
    imported = imported_modules(handler_path(module).read_text(encoding="utf-8"))
    assert imported, "a handler imports at least boto3"
    outside = imported - RUNTIME_PACKAGES - set(sys.stdlib_module_names)
    assert outside == set(), f"{module} imports {sorted(outside)}: the inlined code cannot bring them"


@pytest.mark.parametrize("module", sorted(HANDLER_MODULES.values()))
def test_the_inlined_code_is_the_same_program_without_documentation(module: str) -> None:
    inlined = handler_source(module)
    tokens = tokenize.generate_tokens(io.StringIO(inlined).readline)
    assert not [t.string for t in tokens if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(inlined)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
            assert ast.get_docstring(node) is None
    assert all(line == line.rstrip() and "\t" not in line for line in inlined.splitlines())
    original = ast.parse(handler_path(module).read_text(encoding="utf-8"))
    assert len(inlined) < len(ast.unparse(original)), "compacting made it smaller"


def test_stripping_keeps_strings_and_code() -> None:
    source = (
        '"""Module."""\nimport os  # why\n\n\ndef f(a):\n    """Doc."""\n'
        '    text = """line\n\n    # kept"""\n    return {\n        "a": a,  # note\n    }\n'
    )
    assert strip_documentation(source) == (
        'import os\ndef f(a):\n    text = """line\n\n    # kept"""\n    return {\n        "a": a,\n    }\n'
    )
    assert reindent(strip_documentation(source), width=1) == (
        'import os\ndef f(a):\n text = """line\n\n    # kept"""\n return {\n     "a": a,\n }\n'
    )
    assert compact(source) == reindent(strip_documentation(source), width=1)


def test_a_change_of_meaning_is_refused() -> None:
    with pytest.raises(ValueError, match="only a docstring"):
        strip_documentation('def f():\n    """Only a docstring."""\n')


def test_trailing_whitespace_in_a_handler_is_refused(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tapstack.sources as sources

    path = tmp_path / "broken.py"  # type: ignore[operator]
    path.write_text("def handler(event, context):  \n    return event\n")
    monkeypatch.setattr(sources, "handler_path", lambda module: path)
    with pytest.raises(ValueError, match="trailing whitespace"):
        sources.handler_source("broken")


def test_compacting_refuses_to_change_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    import tapstack.sources as sources

    monkeypatch.setattr(sources, "reindent", lambda source, width=2: source.replace("+ 1", "+ 2"))
    with pytest.raises(ValueError, match="changed its code"):
        sources.compact("def f(a):\n    return a + 1\n")


def test_the_two_senders_share_one_mechanism_line_for_line() -> None:
    """Each inlined handler must stand alone, so the channel-mark mechanism is written twice;
    this keeps the two copies the same (only the provider's name differs)."""

    def mechanism(module: str) -> str:
        source = handler_path(module).read_text(encoding="utf-8")
        return source[source.index("TRANSIENT = re.compile") : source.index("def problem(")]

    assert mechanism("send_sms") == mechanism("send_email").replace("SES", "SNS")
