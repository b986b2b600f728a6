"""What a deleted stack leaves behind (the key and the tables), and how a new stack takes it back.

A stack delete keeps every resource whose ``DeletionPolicy`` retains it: here the encryption key and
the tables (``tapstack.storage.KEEP_EXCEPT_ON_FAILED_CREATE``). Deploying the same stack again would
then fail: the tables' names are taken. docs/deploy.md gives both ways out: delete them, or import
them into the new stack.

CloudFormation imports existing resources with a change set of type ``IMPORT``: a template that
describes the resources to import, "Each resource to import must have a DeletionPolicy attribute",
and for each one its identifier property and value
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import.html). An import
creates nothing else, so the new stack is made from the kept resources alone, and an ordinary deploy
of the whole template then adds the rest.

    python -m tapstack.recovery --key-id 1234abcd-12ab-34cd-56ef-1234567890ab --environment-suffix dev

writes ``import/template.json`` and ``import/resources.json`` for ``aws cloudformation
create-change-set --change-set-type IMPORT``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

#: The deletion policies that keep a resource when its stack is deleted.
KEPT_ON_DELETE = frozenset({"Retain", "RetainExceptOnCreate"})
#: The identifier property of each kept resource type, as an import names it
#: (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import-supported-resources.html).
IMPORT_IDENTIFIERS = {"AWS::DynamoDB::Table": "TableName", "AWS::KMS::Key": "KeyId"}

_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9:._-]+)\}")


def kept_resources(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The resources a delete of this stack keeps, by logical ID."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("DeletionPolicy") in KEPT_ON_DELETE
    }


def _names_used(value: Any) -> Iterator[str]:
    """Every parameter, resource or condition name a part of a template refers to."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else inner.split(".", 1)[0]
            elif key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else inner
                yield from (name for name in _SUB_NAME.findall(text) if name not in variables)
                yield from _names_used(variables)
            elif key == "Condition" and isinstance(inner, str):  # not an IAM policy's Condition block
                yield inner
            elif key == "Fn::If":
                yield inner[0]
                yield from _names_used(inner[1:])
            else:
                yield from _names_used(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _names_used(inner)


def import_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template that makes a new stack of the kept resources alone: those resources as the full
    template describes them, and only the parameters and conditions they use (so that the import
    asks for no value it does not need, such as ``SenderEmail``)."""
    resources = kept_resources(template)
    parameters: dict[str, Any] = {}
    conditions: dict[str, Any] = {}
    pending = list(_names_used(resources))
    while pending:
        name = pending.pop()
        if name in template.get("Parameters", {}) and name not in parameters:
            parameters[name] = template["Parameters"][name]
        elif name in template.get("Conditions", {}) and name not in conditions:
            conditions[name] = template["Conditions"][name]
            pending.extend(_names_used(conditions[name]))
        elif not name.startswith("AWS::") and name not in resources and name not in parameters | conditions:
            raise ValueError(f"a kept resource refers to {name!r}, which an import cannot bring along")
    imported: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "The key and tables a deleted appointment-reminder stack kept, imported into a new one",
    }
    if parameters:
        imported["Parameters"] = {name: parameters[name] for name in template["Parameters"] if name in parameters}
    if conditions:
        imported["Conditions"] = {name: conditions[name] for name in template["Conditions"] if name in conditions}
    imported["Resources"] = resources
    return imported


def resources_to_import(template: Mapping[str, Any], identifiers: Mapping[str, str]) -> list[dict[str, Any]]:
    """``--resources-to-import`` for the kept resources, ``identifiers`` giving each one's value by
    logical ID (the table's name, the key's ID)."""
    kept = kept_resources(template)
    missing = sorted(set(kept) - set(identifiers))
    if missing:
        raise ValueError(f"identifiers: expected a value for each kept resource, missing {missing}")
    return [
        {
            "ResourceType": resource["Type"],
            "LogicalResourceId": logical_id,
            "ResourceIdentifier": {IMPORT_IDENTIFIERS[resource["Type"]]: identifiers[logical_id]},
        }
        for logical_id, resource in kept.items()
    ]


def kept_names(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, str]:
    """The physical name of each kept resource that has one (the tables), with ``${Parameter}``
    in its name resolved from ``parameters`` (or the parameter's default)."""
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values.update(parameters)
    names = {}
    for logical_id, resource in kept_resources(template).items():
        name = resource.get("Properties", {}).get(IMPORT_IDENTIFIERS[resource["Type"]])
        if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
            name = _SUB_NAME.sub(lambda found: values[found.group(1)], name["Fn::Sub"])
        if isinstance(name, str):
            names[logical_id] = name
    return names


def write_import_files(
    template: Mapping[str, Any], key_id: str, parameters: Mapping[str, str], directory: Path
) -> list[Path]:
    """``template.json`` and ``resources.json`` for an IMPORT change set, in ``directory``."""
    identifiers = kept_names(template, parameters)
    for logical_id, resource in kept_resources(template).items():
        if resource["Type"] == "AWS::KMS::Key":
            # An import names a key by its ID; the tables report the key's ARN, which ends in it.
            identifiers[logical_id] = key_id.rsplit("/", 1)[-1]
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "template.json", directory / "resources.json"]
    written[0].write_text(json.dumps(import_template(template), indent=1) + "\n", encoding="utf-8")
    written[1].write_text(json.dumps(resources_to_import(template, identifiers), indent=1) + "\n", encoding="utf-8")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    from tapstack.local.deployment import load_template

    parser = argparse.ArgumentParser(
        prog="python -m tapstack.recovery",
        description="Write the files that import the key and tables a deleted stack kept into a new stack.",
    )
    parser.add_argument(
        "--key-id", required=True, help="the kept key's ID, or its ARN (a table's SSEDescription.KMSMasterKeyArn)"
    )
    parser.add_argument("--environment-suffix", default="dev", help="the deleted stack's EnvironmentSuffix")
    parser.add_argument("--template", default="lib/TapStack.yml", help="the stack's template (lib/TapStack.yml)")
    parser.add_argument("--out", default="import", help="directory to write template.json and resources.json to")
    options = parser.parse_args(argv)
    template = load_template(Path(options.template))
    parameters = {"EnvironmentSuffix": options.environment_suffix}
    for path in write_import_files(template, options.key_id, parameters, Path(options.out)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
