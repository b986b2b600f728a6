"""Resolve a template's intrinsic functions the way CloudFormation would, for a local deployment."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any


class UnsupportedTemplate(ValueError):
    """The template uses something the local runner cannot deploy; the message says what and where."""


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")
#: A variable, or ``${!Text}``, Fn::Sub's way to write the literal ``${Text}``.
_SUB_TOKEN = re.compile(r"\$\{(![^}]*|[^}!]+)\}")


class Resolver:
    """Evaluates ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::FindInMap``, ``Fn::Join``, ``Fn::If``, ``Fn::Select``,
    ``Fn::Split`` and condition functions against parameter values and deployed resources.

    ``ref`` and ``get_att`` answer for resources: they receive a logical ID (and attribute) and
    return the physical value, raising ``KeyError`` when the resource is not deployed (yet).
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
    ) -> None:
        self.template = template
        self.parameters = dict(parameters)
        self.pseudo = dict(pseudo)
        self._ref = ref
        self._get_att = get_att
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definitions = self.template.get("Conditions", {})
            if name not in definitions:
                raise UnsupportedTemplate(f"Conditions: {name!r} is used but not defined")
            self._conditions[name] = bool(self.resolve(definitions[name], f"Conditions/{name}"))
        return self._conditions[name]

    def resolve(self, value: Any, where: str = "") -> Any:
        """The value with every intrinsic function evaluated; ``where`` names it in errors."""
        if isinstance(value, list):
            items = [self.resolve(item, f"{where}/{i}") for i, item in enumerate(value)]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._function(key, argument, where)
        resolved = {k: self.resolve(v, f"{where}/{k}") for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _function(self, name: str, argument: Any, where: str) -> Any:
        if name == "Ref":
            return self.ref(argument, where)
        if name == "Fn::GetAtt":
            logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            try:
                return self._get_att(logical_id, attribute)
            except KeyError:
                raise UnsupportedTemplate(f"{where}: cannot resolve Fn::GetAtt {logical_id}.{attribute}") from None
        if name == "Fn::Sub":
            return self._sub(argument, where)
        if name == "Fn::FindInMap":
            map_name, top_key, second_key = self.resolve(argument, where)
            try:
                return self.template["Mappings"][map_name][top_key][second_key]
            except KeyError:
                raise UnsupportedTemplate(f"{where}: no mapping value {map_name}.{top_key}.{second_key}") from None
        if name == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self.resolve(items, where))
        if name == "Fn::If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.condition(condition) else when_false, where)
        if name == "Fn::Select":
            index, items = self.resolve(argument, where)
            return items[int(index)]
        if name == "Fn::Split":
            separator, text = self.resolve(argument, where)
            return text.split(separator)
        if name == "Fn::Equals":
            left, right = self.resolve(argument, where)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self.resolve(argument[0], where)
        if name == "Fn::And":
            return all(self.resolve(item, where) for item in argument)
        if name == "Fn::Or":
            return any(self.resolve(item, where) for item in argument)
        if name == "Condition":
            return self.condition(argument)
        raise UnsupportedTemplate(f"{where}: the local runner does not support {name}")

    def ref(self, name: str, where: str = "") -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        try:
            return self._ref(name)
        except KeyError:
            raise UnsupportedTemplate(f"{where}: cannot resolve Ref {name}") from None

    def _sub(self, argument: Any, where: str) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, variables = argument[0], self.resolve(argument[1], where)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self._function("Fn::GetAtt", [logical_id, attribute], where))
            return str(self.ref(name, where))

        return _SUB_TOKEN.sub(replace, text)


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """Apply ``DefinitionSubstitutions`` to every string of a state machine definition."""
    if isinstance(value, str):
        return _SUB_VARIABLE.sub(lambda m: str(variables.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    return value
