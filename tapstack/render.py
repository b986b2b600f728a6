"""Template to text: readable section and key order, short YAML, the same bytes on every run."""

from __future__ import annotations

import json
from typing import Any

import yaml
from cfn_clean import cfn_literal_parser, clean
from cfn_flip import get_dumper, load_json, load_yaml
from cfn_tools._config import config
from cfn_tools.odict import ODict
from troposphere import Template

SECTION_ORDER = (
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Mappings",
    "Conditions",
    "Resources",
    "Outputs",
)
RESOURCE_KEY_ORDER = (
    "Type",
    "Condition",
    "DependsOn",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "Metadata",
    "Properties",
)


def ordered(template: Template) -> dict[str, Any]:
    """The template as a dict in the order a reader expects: sections, then Type before Properties."""
    data = template.to_dict()
    result = {section: data[section] for section in SECTION_ORDER if section in data}
    result["Resources"] = {
        name: {key: resource[key] for key in RESOURCE_KEY_ORDER if key in resource}
        for name, resource in data["Resources"].items()
    }
    return result


class _Dumper(get_dumper(clean_up=True, long_form=False)):  # type: ignore[misc]
    """cfn-flip's dumper, with short lists of plain values on one line (``[a, b]``), and a list
    that is a mapping's value starting at its key's column (``Statement:`` then ``- Effect: ...``),
    PyYAML's own default, which cfn-flip turns off: two bytes fewer on every line of every list."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        yaml.emitter.Emitter.increase_indent(self, flow, indentless)


#: Longest record (as compact JSON) written on one line; a list of plain names may be longer.
FLOW_LIMIT = 200
NAMES_LIMIT = 220


def _intrinsic(value: dict[str, Any]) -> bool:
    return len(value) == 1 and (next(iter(value)) in ("Ref", "Condition") or next(iter(value)).startswith("Fn::"))


def _inline(value: Any) -> bool:
    """Made only of plain values, intrinsic functions of plain values and small records of them."""
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, (str, int, float)):
        return "\n" not in str(value)
    if isinstance(value, list):
        return all(_inline(item) for item in value)
    if isinstance(value, dict):
        if _intrinsic(value):
            argument = next(iter(value.values()))
            return isinstance(argument, str) or (
                isinstance(argument, list)
                and all(
                    isinstance(a, (str, int)) or (isinstance(a, dict) and _intrinsic(a) and _inline(a))
                    for a in argument
                )
            )
        return len(value) <= 4 and all(_inline(item) for item in value.values())
    return False


def _one_line(value: Any) -> bool:
    names = isinstance(value, list) and all(isinstance(item, str) for item in value)
    limit = NAMES_LIMIT if names else FLOW_LIMIT
    return bool(value) and _inline(value) and len(json.dumps(value, separators=(",", ":"))) <= limit


def _represent_list(dumper: yaml.Dumper, value: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=_one_line(value))


def _represent_map(dumper: yaml.Dumper, value: dict[str, Any]) -> yaml.Node:
    """Intrinsic functions as tags (cfn-flip's way); a small record of plain values on one line."""
    if not _intrinsic(value) and _one_line(value):
        return dumper.represent_mapping("tag:yaml.org,2002:map", ODict(value.items()), flow_style=True)
    if list(value) == ["Fn::GetAtt"] and isinstance(value["Fn::GetAtt"], list):
        # cfn-flip would write the dotted short form (!GetAtt X.Arn), which cfn-guard, and so the
        # Control Tower rules, read as one opaque string; the list form names the resource.
        return dumper.represent_sequence("!GetAtt", value["Fn::GetAtt"], flow_style=True)
    node: yaml.Node = _FLIP_MAP_REPRESENTER(dumper, value)
    return node


_FLIP_MAP_REPRESENTER = _Dumper.yaml_representers[ODict]
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(ODict, _represent_map)


def to_yaml(template: Template) -> str:
    data = cfn_literal_parser(clean(load_json(json.dumps(ordered(template)))))
    text: str = yaml.dump(
        data, Dumper=_Dumper, default_flow_style=False, allow_unicode=True, width=config.max_col_width
    )
    return tighten_mappings(text)


def tighten_mappings(text: str) -> str:
    """The ``Mappings`` section indented by one space a level instead of two.

    It holds the handlers' code (``tapstack.functions``): literal blocks whose every line costs its
    indentation, about 300 lines of it. Each level of the section (mapping, key, language, module)
    moves left by half, and each block's lines move with their key, one space deeper than it (the
    code's own indentation is kept). Raises ``ValueError`` if the result does not read back as the
    same template.
    """
    lines = text.split("\n")
    start = next((n for n, line in enumerate(lines) if line == "Mappings:"), None)
    if start is None:
        return text
    end = next(n for n in range(start + 1, len(lines)) if lines[n] and not lines[n].startswith(" "))
    shift = 0  # how far the current literal block moves left
    block_indent = None  # its content's indentation, while inside one
    for number in range(start + 1, end):
        line = lines[number]
        indent = len(line) - len(line.lstrip(" "))
        if block_indent is not None and (not line.strip() or indent >= block_indent):
            lines[number] = line[shift:] if line.strip() else line
            continue
        block_indent = None
        lines[number] = " " * (indent // 2) + line[indent:]
        if line.rstrip().endswith(("|", "|-", "|+")):
            block_indent = indent + 1
            shift = indent + 2 - (indent // 2 + 1)  # content was key + 2; it becomes key/2 + 1
    result = "\n".join(lines)
    if load_yaml(result) != load_yaml(text):
        raise ValueError("re-indenting the Mappings section changed the template")
    return result


def to_json(template: Template) -> str:
    return json.dumps(ordered(template), indent=1) + "\n"
