"""Template to text: readable section and key order, short YAML, the same bytes on every run."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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
    (name, argument), *_ = value.items()
    if _intrinsic(value) and isinstance(argument, list) and all(isinstance(a, (str, int)) for a in argument):
        # A function of plain names on one line (!FindInMap [HandlerModules, Python, common]), as
        # cfn-flip writes it only inside a one-line parent.
        return dumper.represent_sequence("!" + name.removeprefix("Fn::"), argument, flow_style=True)
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
    return indent_by_one(text)


@dataclass
class _Level:
    """A level of the block structure, as the re-indenter walks it: the column of the line that
    opened it, before and after, and whether that line is a list entry (``- key: value``), whose
    mapping continues two columns right of the dash."""

    before: int
    after: int
    entry: bool


def indent_by_one(text: str) -> str:
    """The YAML text indented by one space a level instead of two.

    Every line of a CloudFormation template costs its indentation: about 6,000 of the template's
    bytes at two spaces a level, half of it at one. PyYAML does not write one space a level (its
    emitter accepts 2 to 9), so the text it wrote is re-indented line by line, from PyYAML's own
    reading of it (``_block_structure``):

    - a line that starts a key or a list entry (outside ``[...]`` and ``{...}``) sits one column
      right of the line that holds it, or, in a list entry's mapping, two right of the dash (YAML
      aligns that mapping's keys with the one after the dash);
    - a literal block's lines (the handlers' code) sit one column right of their key or dash, their
      own indentation kept (a block with an explicit indentation indicator moves with its key);
    - any other line (a long flow list or string that continues) moves left with the line it
      continues, so it stays right of it.

    Raises ``ValueError`` if the result does not read back as the same template.
    """
    lines = text.split("\n")
    starts, owners, blocks = _block_structure(text)
    shift = [0] * len(lines)  # how far each line moves left
    in_block = {number for content in blocks.values() for number in content}
    levels: list[_Level] = []
    continued = 0  # the shift of the last line that started a key or an entry
    for number, line in enumerate(lines):
        if not line.strip() or number in in_block:
            continue
        column = len(line) - len(line.lstrip(" "))
        if number not in starts:
            shift[number] = continued
            continue
        while levels and levels[-1].before > column:
            levels.pop()
        if levels and levels[-1].before == column:
            after = levels.pop().after
        elif not levels:
            after = column
        elif levels[-1].entry:
            after = levels[-1].after + column - levels[-1].before
        else:
            after = levels[-1].after + 1
        levels.append(_Level(column, after, entry=starts[number]))
        shift[number] = continued = column - after
    for header, content in blocks.items():
        owner = owners[header]
        if re.match(r"[|>][-+]?\d", lines[header][owners[header] :].split(" ")[-1]):
            moved = shift[header]  # an explicit indentation indicator counts from the key
        else:
            base = min(len(lines[n]) - len(lines[n].lstrip(" ")) for n in content if lines[n].strip())
            moved = base - (owner - shift[header] + 1)
        for number in content:
            shift[number] = moved if lines[number].strip() else 0
    result = "\n".join(line[shift[number] :] for number, line in enumerate(lines))
    if load_yaml(result) != load_yaml(text):
        raise ValueError("re-indenting the template changed it")
    return result


def _block_structure(text: str) -> tuple[dict[int, bool], dict[int, int], dict[int, list[int]]]:
    """How PyYAML's scanner reads the text, by line number: the lines that start a key or a list
    entry in block context (True for an entry); the column of the last key or entry on each such
    line (the owner of a literal block that starts there); and each literal block's header line
    with its content lines."""
    lines = text.split("\n")
    starts: dict[int, bool] = {}
    owners: dict[int, int] = {}
    blocks: dict[int, list[int]] = {}
    flow = 0
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        line, column = token.start_mark.line, token.start_mark.column
        if isinstance(token, yaml.FlowSequenceStartToken | yaml.FlowMappingStartToken):
            flow += 1
        elif isinstance(token, yaml.FlowSequenceEndToken | yaml.FlowMappingEndToken):
            flow -= 1
        elif isinstance(token, yaml.KeyToken | yaml.BlockEntryToken) and not flow:
            if line not in starts and not lines[line][:column].strip():
                starts[line] = isinstance(token, yaml.BlockEntryToken)
            owners[line] = column
        elif isinstance(token, yaml.ScalarToken) and token.style in ("|", ">"):
            # Its content: the lines after the header that are blank or right of the block's owner.
            content = []
            for number in range(line + 1, len(lines)):
                indent = len(lines[number]) - len(lines[number].lstrip(" "))
                if lines[number].strip() and indent <= owners[line]:
                    break
                content.append(number)
            while content and not lines[content[-1]].strip():
                content.pop()
            blocks[line] = content
    return starts, owners, blocks


def to_json(template: Template) -> str:
    return json.dumps(ordered(template), indent=1) + "\n"
