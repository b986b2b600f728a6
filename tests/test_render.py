"""The template's text: one space a level, read back as the same template."""

from __future__ import annotations

import pytest
from cfn_flip import load_yaml

from tapstack.render import indent_by_one

NESTED = """\
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
      - PolicyName: P
        PolicyDocument:
          Statement:
          - Effect: Allow
            Action: ['logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery',
              'logs:DescribeLogGroups']
            Resource: ['*']
  Function:
    Properties:
      Code:
        ZipFile: !Sub
        - |-
          def handler(event, context):
           return 1
          ${common}
        - {common: !FindInMap [M, Python, common]}
      Description: a long plain text that the writer
        continued on a second line
Mappings:
  M:
    Python:
      common: |
        import os
        if os:
         pass
      keep: |2
          indented first line
        second
"""


def test_each_level_is_one_space_and_the_template_is_the_same() -> None:
    tightened = indent_by_one(NESTED)

    assert load_yaml(tightened) == load_yaml(NESTED)
    lines = tightened.splitlines()
    assert " Role:" in lines and "  Type: AWS::IAM::Role" in lines
    # A list entry's mapping stays aligned with the key after its dash, as YAML requires.
    assert "   - PolicyName: P" in lines and "     PolicyDocument:" in lines
    assert "      - Effect: Allow" in lines and "        Resource: ['*']" in lines
    # A literal block sits one column right of its dash or key, its own indentation kept.
    assert "    - |-" in lines and "     def handler(event, context):" in lines and "      return 1" in lines
    assert "   common: |" in lines and "    import os" in lines and "     pass" in lines
    assert len(tightened) <= len(NESTED) - 100


def test_a_block_with_an_indentation_indicator_moves_with_its_key() -> None:
    tightened = indent_by_one(NESTED)

    assert load_yaml(tightened)["Mappings"]["M"]["Python"]["keep"] == "  indented first line\nsecond\n"


@pytest.mark.parametrize("text", ["a: 1\n", "- a\n- b\n", "a:\n- {b: 1}\n- [c, d]\n"])
def test_small_documents(text: str) -> None:
    assert load_yaml(indent_by_one(text)) == load_yaml(text)


def test_the_built_template_is_indented_by_one(template_text: str) -> None:
    assert "\n Resources:" not in template_text and "\nResources:\n EncryptionKey:\n  Type:" in template_text
