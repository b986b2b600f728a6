"""Mermaid diagrams generated from the template itself: the workflow and the resources' wiring."""

from __future__ import annotations

import re
from typing import Any

#: Services reached without a resource of the template, by IAM service prefix: node id and label.
_SERVICES = {"ses": ("SES", "SES email"), "sns": ("SMS", "SNS SMS to phones")}


def _node(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _retries(state: dict[str, Any]) -> str:
    parts = []
    for retrier in state.get("Retry", []):
        errors = retrier["ErrorEquals"]
        shown = ", ".join(errors) if len(errors) <= 2 else f"{len(errors)} transient errors"
        parts.append(f"retry {shown} up to {retrier.get('MaxAttempts', 3)} times")
    timeout = f"timeout {state['TimeoutSeconds']} s" if "TimeoutSeconds" in state else ""
    return "".join(f"<br/>{part}" for part in [*parts, timeout] if part)


def _transitions(state: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for choice in state.get("Choices", []):
        test = " ".join(f"{key} {value}" for key, value in choice.items() if key not in ("Variable", "Next"))
        found.append((choice["Next"], f'|"{choice.get("Variable", "")} {test}"|'))
    if "Default" in state:
        found.append((state["Default"], "|otherwise|"))
    if "Next" in state:
        found.append((state["Next"], ""))
    return found


def _draw(states: dict[str, Any], entry: str, leave: str, indent: str, lines: list[str]) -> None:
    lines.append(f"{indent}{entry} --> {_node(next(iter(states)))}")
    for name, state in states.items():
        node, kind = _node(name), state["Type"]
        if kind in ("Map", "Parallel"):
            at_once = f", at most {state['MaxConcurrency']} at once" if "MaxConcurrency" in state else ""
            lines.append(f'{indent}subgraph {node}["{name} ({kind}{at_once})"]')
            lines.append(f"{indent}  direction TB")
            lines.append(f"{indent}  {node}_start(( ))")
            lines.append(f"{indent}  {node}_done(( ))")
            if kind == "Map":
                bodies = [(state.get("ItemProcessor") or state["Iterator"])["States"]]
            else:
                bodies = [branch["States"] for branch in state["Branches"]]
            for body in bodies:
                _draw(body, f"{node}_start", f"{node}_done", indent + "  ", lines)
            lines.append(f"{indent}end")
        elif kind == "Choice":
            lines.append(f"{indent}{node}{{{name}}}")
        elif kind in ("Succeed", "Fail"):
            lines.append(f"{indent}{node}([{name}])")
        else:
            lines.append(f'{indent}{node}["{name}{_retries(state) if kind == "Task" else ""}"]')
        for target, label in _transitions(state):
            lines.append(f"{indent}{node} -->{label} {_node(target)}")
        for catch in state.get("Catch", []):
            lines.append(f'{indent}{node} -.->|"catch {", ".join(catch["ErrorEquals"])}"| {_node(catch["Next"])}')
        if state.get("End") or kind in ("Succeed", "Fail"):
            lines.append(f"{indent}{node} --> {leave}")


def workflow_diagram(definition: dict[str, Any]) -> str:
    """Every state, branch, retry and catch of a state machine definition, as a Mermaid flowchart."""
    lines = ["flowchart TD", "  start((start))", "  finish((end))"]
    _draw(definition["States"], "start", "finish", "  ", lines)
    return "\n".join(lines) + "\n"


def _target(resource: Any, names: set[str]) -> str | None:
    """The logical ID (or external service) a policy resource or property value points at."""
    text = repr(resource)
    for name in sorted(names, key=len, reverse=True):
        if f"'{name}'" in text or f"{{{name}." in text or f"${{{name}}}" in text:
            return name
    return None


def resources_diagram(template: dict[str, Any]) -> str:
    """Triggers → workflow → functions → tables, SES and SNS, read from the template's own wiring."""
    resources = template["Resources"]
    names = set(resources)
    roles = {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    shown_types = (
        "AWS::DynamoDB::Table",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::StepFunctions::StateMachine",
        "AWS::Lambda::Function",
        "AWS::Events::Rule",
        "AWS::Pipes::Pipe",
    )
    edges: dict[tuple[str, str], set[str]] = {}

    def edge(source: str, target: str, label: str) -> None:
        edges.setdefault((source, target), set()).add(label)

    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Pipes::Pipe":
            source = _target(properties["Source"], names)
            if source:
                edge(source, name, "stream")
            edge(name, _target(properties["Target"], names) or "?", "starts")
            dead_letters = properties["SourceParameters"]["DynamoDBStreamParameters"].get("DeadLetterConfig", {})
            if dead_letters:
                edge(name, _target(dead_letters, names) or "?", "undeliverable")
        elif resource["Type"] == "AWS::Events::Rule":
            for target in properties.get("Targets", []):
                edge(name, _target(target["Arn"], names) or "?", "starts on schedule")
        elif resource["Type"] in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"):
            role = _target(properties.get("Role") or properties.get("RoleArn"), set(roles))
            for statement in _statements(roles.get(role or "", {})):
                if statement["Effect"] != "Allow":
                    continue
                for action in statement["Action"]:
                    service, verb = action.split(":", 1)
                    for policy_resource in statement["Resource"]:
                        target = _target(policy_resource, names - set(roles))
                        if target is None and ((service == "sns" and verb == "Publish") or service == "ses"):
                            target = _SERVICES[service][0]
                        if target and (target in ("SES", "SMS") or resources[target]["Type"] in shown_types):
                            edge(name, target, verb)
    alarms = [name for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    lines = ["flowchart LR", "  app([booking app])"]
    tables = [name for name, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"]
    for name in [n for n in resources if resources[n]["Type"] in shown_types]:
        shape = "[({})]" if name in tables else "[{}]"
        lines.append(f"  {_node(name)}" + shape.format(name))
    for node, label in _SERVICES.values():
        lines.append(f'  {node}{{{{"{label}"}}}}')
    appointments = next((t for t in tables if "Appointment" in t), None)
    if appointments:
        lines.append(f"  app -->|writes| {_node(appointments)}")
    for (source, target), labels in sorted(edges.items()):
        lines.append(f"  {_node(source)} -->|{', '.join(sorted(labels))}| {_node(target)}")
    if alarms:
        topic = _target(resources[alarms[0]]["Properties"].get("AlarmActions"), names)
        lines.append(f"  alarms[{len(alarms)} CloudWatch alarms] -->|notify| {_node(topic or '?')}")
    return "\n".join(lines) + "\n"


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    policies = role.get("Properties", {}).get("Policies", [])
    return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


README_START = "<!-- diagrams: generated by python build.py from the template; do not edit between these marks -->"
README_END = "<!-- diagrams: end -->"


def diagrams_markdown(template: dict[str, Any], heading: str = "##") -> str:
    """Both diagrams, each in a Mermaid block under its own heading."""
    machine = next(r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    return (
        f"{heading} Resources and their wiring\n\n```mermaid\n{resources_diagram(template)}```\n\n"
        f"{heading} NotificationWorkflow\n\n"
        "Dotted arrows are `Catch` transitions; each task lists its retries and timeout.\n\n"
        f"```mermaid\n{workflow_diagram(machine['Properties']['Definition'])}```\n"
    )


def workflow_markdown(template: dict[str, Any]) -> str:
    """``docs/workflow.md``."""
    return (
        "# How the reminder system is wired\n\n"
        "Generated by `python build.py` from `lib/TapStack.yml`; do not edit by hand.\n\n" + diagrams_markdown(template)
    )


def embed_in_readme(readme: str, template: dict[str, Any]) -> str:
    """The README with its diagram section (between the two marks) regenerated."""
    if README_START not in readme or README_END not in readme:
        return readme
    head, rest = readme.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n\n{diagrams_markdown(template, '###')}\n{README_END}{tail}"
