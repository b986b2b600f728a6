"""What the template's bytes are spent on, against the most CloudFormation reads from a file."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: ``aws cloudformation deploy --template-file`` sends the template in the request (TemplateBody),
#: which CloudFormation accepts up to 51,200 bytes; a bigger one must be uploaded to S3 first.
#: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
TEMPLATE_BODY_LIMIT = 51_200

_SECTION = re.compile(r"^([A-Za-z]\w*):")
_RESOURCE = re.compile(r"^( +)([A-Za-z0-9]+):")


@dataclass(frozen=True)
class Budget:
    """A rendered YAML template's size, and the bytes of each resource and of each other section."""

    size: int
    parts: dict[str, int]

    @classmethod
    def of(cls, text: str) -> Budget:
        """Each line's bytes go to the resource (or the top-level section) it is written under."""
        parts: dict[str, int] = {}
        section = owner = ""
        resource_indent = ""  # a resource's logical id is at the section's first indentation
        for line in text.splitlines(keepends=True):
            if match := _SECTION.match(line):
                section = owner = match.group(1)
            elif section == "Resources" and (match := _RESOURCE.match(line)):
                resource_indent = resource_indent or match.group(1)
                if match.group(1) == resource_indent:
                    owner = match.group(2)
            parts[owner] = parts.get(owner, 0) + len(line.encode())
        return cls(len(text.encode()), parts)

    @property
    def headroom(self) -> int:
        return TEMPLATE_BODY_LIMIT - self.size

    def report(self, name: str, before: Budget | None = None, largest: int = 6) -> list[str]:
        """Lines for a contributor: the size and headroom, then the largest parts, each with its
        change against ``before`` (the file as it was)."""

        def change(now: int, then: int | None) -> str:
            return "" if then is None or now == then else f" ({now - then:+,})"

        whole = change(self.size, before.size if before else None)
        lines = [f"{name}: {self.size:,} of {TEMPLATE_BODY_LIMIT:,} bytes{whole}, {self.headroom:,} of headroom"]
        for part, size in sorted(self.parts.items(), key=lambda item: -item[1])[:largest]:
            then = before.parts.get(part, 0) if before else None
            lines.append(f"  {size:7,}  {part}{change(size, then)}")
        return lines
