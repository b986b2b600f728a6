"""Template assertions in the manner of CDK's ``assertions`` module, on a template dict."""

from __future__ import annotations

from typing import Any


def matches(actual: Any, expected: Any) -> bool:
    """Deep partial match: every key of ``expected`` is in ``actual`` with a matching value;
    lists match element by element (same length)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(matches(a, e) for a, e in zip(actual, expected, strict=False))
        )
    return bool(actual == expected)


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def resource_count_is(template: dict[str, Any], resource_type: str, count: int) -> None:
    found = resources(template, resource_type)
    assert len(found) == count, f"expected {count} {resource_type}, found {sorted(found)}"


def has_resource_properties(template: dict[str, Any], resource_type: str, properties: dict[str, Any]) -> str:
    """Assert that some resource of the type has these properties; return its logical ID."""
    found = resources(template, resource_type)
    for logical_id, resource in found.items():
        if matches(resource.get("Properties", {}), properties):
            return logical_id
    raise AssertionError(f"no {resource_type} among {sorted(found)} has properties {properties}")


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of a role's inline policies."""
    return [s for policy in role["Properties"].get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def granted(role: dict[str, Any]) -> dict[str, list[Any]]:
    """Allowed action → the resources it is allowed on."""
    result: dict[str, list[Any]] = {}
    for statement in statements(role):
        if statement["Effect"] != "Allow":
            continue
        for action in statement["Action"]:
            result.setdefault(action, []).extend(statement["Resource"])
    return result


def walk_states(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every state of a definition, nested ones (Map item processors, Parallel branches) included."""
    found = []
    for name, state in states.items():
        found.append((name, state))
        if state["Type"] == "Map":
            processor = state.get("ItemProcessor") or state["Iterator"]
            found.extend(walk_states(processor["States"]))
        for branch in state.get("Branches", []):
            found.extend(walk_states(branch["States"]))
    return found
