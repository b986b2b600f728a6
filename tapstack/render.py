"""Template to text: readable section and key order, short YAML, the same bytes on every run."""

from __future__ import annotations

import json
from typing import Any

import yaml
from cfn_clean import cfn_literal_parser, clean
from cfn_flip import get_dumper, load_json
from cfn_tools._config import config
from troposphere import Template

SECTION_ORDER = ("AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Mappings", "Conditions",
                 "Resources", "Outputs")
RESOURCE_KEY_ORDER = ("Type", "Condition", "DependsOn", "DeletionPolicy", "UpdateReplacePolicy", "Metadata",
                      "Properties")


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
    """cfn-flip's dumper, with short lists of plain values on one line (``[a, b]``)."""


def _represent_list(dumper: yaml.Dumper, value: list[Any]) -> yaml.Node:
    flow = bool(value) and all(isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value)
    flow = flow and sum(len(str(item)) + 2 for item in value) <= 200 and all("\n" not in str(i) for i in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def to_yaml(template: Template) -> str:
    data = cfn_literal_parser(clean(load_json(json.dumps(ordered(template)))))
    return yaml.dump(data, Dumper=_Dumper, default_flow_style=False, allow_unicode=True,
                     width=config.max_col_width)


def to_json(template: Template) -> str:
    return json.dumps(ordered(template), indent=1) + "\n"
