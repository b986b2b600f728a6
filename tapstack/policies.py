"""Small functions returning awacs statements, so that each role reads like a sentence.

``Resource: "*"`` appears only where AWS authorises the action on ``*`` and nothing narrower;
each such statement says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import awacs.awslambda as awslambda
import awacs.dynamodb as dynamodb
import awacs.kms as kms
import awacs.logs as logs
import awacs.ses as ses
import awacs.sns as sns
import awacs.sqs as sqs
import awacs.states as states
from awacs.aws import Action, Allow, Condition, Deny, PolicyDocument, Statement, StringEquals
from troposphere import GetAtt, Region, Select, Split, Sub
from troposphere.iam import Policy


def document(*statements: Statement) -> PolicyDocument:
    return PolicyDocument(Version="2012-10-17", Statement=list(statements))


def inline_policy(name: str, statements: list[Statement]) -> Policy:
    return Policy(PolicyName=name, PolicyDocument=document(*statements))


def log_writing_statements(log_group: Any) -> list[Statement]:
    """Write to one log group (its ``Arn`` attribute already covers its streams)."""
    return [
        Statement(
            Effect=Allow,
            Action=[logs.CreateLogStream, logs.PutLogEvents],
            Resource=[GetAtt(log_group, "Arn")],
        )
    ]


def key_statements(key_arn: Any, actions: Sequence[Action]) -> list[Statement]:
    """Use of the system's key: services (Lambda, DynamoDB, SNS, SQS) call KMS with the caller's role."""
    return [Statement(Effect=Allow, Action=actions, Resource=[key_arn])]


def table_statements(table_arn: Any, actions: Sequence[Action]) -> list[Statement]:
    return [Statement(Effect=Allow, Action=actions, Resource=[table_arn])]


#: What a booking app does to appointments: write them, change them, delete them, and read one back
#: (a booking app shows what it booked). ConditionCheckItem (a condition on this table inside
#: TransactWriteItems) and batch writes are left out: an app that uses them adds them.
APPOINTMENT_WRITING_ACTIONS = (dynamodb.PutItem, dynamodb.UpdateItem, dynamodb.DeleteItem, dynamodb.GetItem)


def appointments_writing_statements(table_arn: Any, key_arn: Any | None) -> list[Statement]:
    """A booking app's grants on the Appointments table and, if it has one, the table's key.

    DynamoDB uses a table's customer managed key on behalf of the caller, so the caller's role needs
    the key too; ``kms:ViaService`` keeps the grant to requests that DynamoDB makes in this region, the
    condition AWS's own key policy for DynamoDB uses
    (https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html).
    """
    found = table_statements(table_arn, list(APPOINTMENT_WRITING_ACTIONS))
    if key_arn is not None:
        found.append(
            Statement(
                Effect=Allow,
                Action=[kms.Decrypt, kms.GenerateDataKey],
                Resource=[key_arn],
                Condition=Condition(StringEquals("kms:ViaService", Sub("dynamodb.${AWS::Region}.amazonaws.com"))),
            )
        )
    return found


def index_query_statements(table_arn: Any, index_name: str) -> list[Statement]:
    return [
        Statement(
            Effect=Allow,
            Action=[dynamodb.Query],
            Resource=[Sub("${Table}/index/" + index_name, Table=table_arn)],
        )
    ]


#: Any configuration set of the account in this region (see ``email_sending_statements``).
CONFIGURATION_SETS = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/*"


def email_sending_statements(sender_email: Any) -> list[Statement]:
    """SES authorises SendEmail on the identity used (the address itself or its domain) and, when one
    applies, on the configuration set.

    ``ses:SendEmail`` has two resource types, ``identity`` (required) and ``configuration-set``
    (arn:${Partition}:ses:${Region}:${Account}:configuration-set/${ConfigurationSetName}:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonses.html), and an
    identity's default configuration set "is applied every time email is sent from the identity"
    (https://docs.aws.amazon.com/ses/latest/dg/managing-configuration-sets.html), also when the
    request names none, as ours does. Which set that is belongs to whoever owns the identity and may
    change without this stack, so the grant names every set of the account in this region; it is
    only ever used together with the identity grant, which keeps the sender to our identity.
    """
    identity = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
    configuration_sets = Sub(CONFIGURATION_SETS)
    if isinstance(sender_email, str):
        address, domain = sender_email, sender_email.split("@", 1)[1]
        resources = [Sub(identity + address), Sub(identity + domain), configuration_sets]
    else:
        resources = [
            Sub(identity + f"${{{sender_email.data['Ref']}}}"),
            Sub(identity + "${Domain}", Domain=Select(1, Split("@", sender_email))),
            configuration_sets,
        ]
    return [Statement(Effect=Allow, Action=[ses.SendEmail], Resource=resources)]


def sms_sending_statements() -> list[Statement]:
    # A phone number has no ARN: SNS authorises Publish to a phone number, and the opt-out
    # check, only on "*". The condition keeps it to this region; the Deny keeps the grant
    # from reaching any topic or endpoint, so only direct SMS is left.
    return [
        Statement(
            Effect=Allow,
            Action=[sns.Publish, sns.CheckIfPhoneNumberIsOptedOut],
            Resource=["*"],
            Condition=Condition(StringEquals("aws:RequestedRegion", Region)),
        ),
        Statement(
            Effect=Deny,
            Action=[sns.Publish],
            Resource=[Sub("arn:${AWS::Partition}:sns:*:*:*")],
        ),
    ]


def topic_publishing_statements(topic: Any) -> list[Statement]:
    return [Statement(Effect=Allow, Action=[sns.Publish], Resource=[topic])]


def function_invoking_statements(function_arns: list[Any]) -> list[Statement]:
    return [Statement(Effect=Allow, Action=[awslambda.InvokeFunction], Resource=function_arns)]


def execution_starting_statements(state_machine_arn: Any, synchronously: bool = False) -> list[Statement]:
    """Start the workflow: ``StartSyncExecution`` is the pipe's way to start an Express one and wait."""
    action = states.StartSyncExecution if synchronously else states.StartExecution
    return [Statement(Effect=Allow, Action=[action], Resource=[state_machine_arn])]


def execution_data_key_statements(key: Any, state_machine_arn: Any, decrypt: bool = False) -> list[Statement]:
    """Use of the key that encrypts a Standard workflow's execution data: whoever starts an execution
    needs GenerateDataKey, the workflow's own role Decrypt too (Step Functions calls KMS with the
    caller's credentials, in the state machine's encryption context).
    https://docs.aws.amazon.com/step-functions/latest/dg/encryption-at-rest.html"""
    return [
        Statement(
            Effect=Allow,
            Action=[kms.GenerateDataKey, *([kms.Decrypt] if decrypt else [])],
            Resource=[GetAtt(key, "Arn")],
            Condition=Condition(StringEquals("kms:EncryptionContext:aws:states:stateMachineArn", state_machine_arn)),
        )
    ]


def log_delivery_statements() -> list[Statement]:
    # CloudWatch Logs authorises the vended log-delivery actions only on "*".
    return [
        Statement(
            Effect=Allow,
            Action=[
                logs.CreateLogDelivery,
                logs.GetLogDelivery,
                logs.UpdateLogDelivery,
                logs.DeleteLogDelivery,
                logs.ListLogDeliveries,
                logs.PutResourcePolicy,
                logs.DescribeResourcePolicies,
                logs.DescribeLogGroups,
            ],
            Resource=["*"],
        )
    ]


def stream_reading_statements(stream_arn: Any) -> list[Statement]:
    return [
        Statement(
            Effect=Allow,
            Action=[dynamodb.DescribeStream, dynamodb.GetRecords, dynamodb.GetShardIterator],
            Resource=[stream_arn],
        ),
        # ListStreams names no stream, so DynamoDB authorises it only on "*".
        Statement(Effect=Allow, Action=[dynamodb.ListStreams], Resource=["*"]),
    ]


def queue_sending_statements(queue_arn: Any) -> list[Statement]:
    return [Statement(Effect=Allow, Action=[sqs.SendMessage], Resource=[queue_arn])]


def account_arn(service: str, resource: str, **variables: Any) -> Sub:
    """``arn:<partition>:<service>:<region>:<account>:<resource>``; ``resource`` may hold ``${...}``."""
    return Sub(f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}", **variables)
