"""The encryption key, the booking app's Appointments table and the system's Reminders table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import awacs.kms as kms
from awacs.aws import Allow, ArnLike, BoolIfExists, Condition, Deny, Principal, Statement, StringEquals
from troposphere import AccountId, GetAtt, Ref, Sub, Template
from troposphere.dynamodb import (
    AttributeDefinition,
    GlobalSecondaryIndex,
    KeySchema,
    PointInTimeRecoverySpecification,
    Projection,
    SSESpecification,
    StreamSpecification,
    Table,
    TimeToLiveSpecification,
)
from troposphere.kms import Key

from tapstack.policies import account_arn, document, key_statements
from tapstack.settings import Settings

#: The sparse index of reminders still to be sent, keyed by the time of the next attempt.
DUE_INDEX = "DueIndex"
#: Write shards of the due index. Fixed: a reminder written to a shard that a later version
#: stops reading would never be found. Eight spread the index's writes over eight partitions.
DUE_INDEX_SHARDS = 8


#: What the key and the tables keep when CloudFormation would delete or replace them: everything,
#: except what a failed first create made. "RetainExceptOnCreate behaves like Retain for stack
#: operations, except for the stack operation that initially created the resource. If the stack
#: operation that created the resource is rolled back, CloudFormation deletes the resource"
#: (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html),
#: so a failed first deploy leaves no table behind to make the retry fail with "already exists".
#: UpdateReplacePolicy has no such value: a replacement keeps the old resource.
#: DynamoDB deletion protection would refuse that rollback's DeleteTable: a protected table cannot be
#: deleted, whatever IAM permissions allow
#: (https://aws.amazon.com/about-aws/whats-new/2023/03/amazon-dynamodb-table-deletion-protection/,
#: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithTables.Basics.html#WorkingWithTables.Basics.DeletionProtection),
#: and the stack would end in ROLLBACK_FAILED with its tables kept. So the DeletionProtection
#: setting is off by default, and docs/deploy.md says to turn it on once the first deploy succeeded.
KEEP_EXCEPT_ON_FAILED_CREATE = {"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"}


@dataclass
class AppointmentsTableRef:
    """The Appointments table as the rest of the system needs it, created here or existing."""

    name: Any
    arn: Any
    stream_arn: Any
    resource: Table | None
    #: The customer managed key the table (and so its stream) is encrypted with: the stack's for the
    #: table it creates, the host's own for an existing table that names one, else None.
    key_arn: Any = None

    def foreign_key_statements(self) -> list[Statement]:
        """``kms:Decrypt`` on an existing table's own key, for whoever reads the table or its stream.

        DynamoDB uses a table's customer managed key on behalf of each principal that reads or writes
        the table (https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html), and
        "DynamoDB streams are always encrypted with a table-level encryption key"
        (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html).
        The stack's own key is granted to every role already, so only another key needs a statement.
        """
        if self.resource is not None or self.key_arn is None:
            return []
        return key_statements(self.key_arn, [kms.Decrypt])


def add_key(template: Template, settings: Settings) -> Key:
    """One customer-managed key for the tables, topics, queue, log groups and environments.

    CloudWatch needs a customer-managed key to publish alarms to an encrypted topic, and CloudWatch
    Logs needs the key policy's consent; everything else is granted through IAM.
    """
    root = Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")
    return template.add_resource(
        Key(
            settings.logical_id("EncryptionKey"),
            EnableKeyRotation=True,
            # Tables kept after the stack is deleted stay readable only while their key exists.
            **KEEP_EXCEPT_ON_FAILED_CREATE,
            KeyPolicy=document(
                Statement(Effect=Allow, Principal=Principal("AWS", root), Action=[kms.Action("*")], Resource=["*"]),
                # No DescribeKey here: it carries no encryption context, so this condition could
                # never allow it. AWS's managed policy CloudWatchLogsAPIKeyAccess grants it in a
                # statement of its own for that reason:
                # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/CloudWatchLogsAPIKeyAccess.html
                Statement(
                    Effect=Allow,
                    Principal=Principal("Service", Sub("logs.${AWS::Region}.amazonaws.com")),
                    Action=[kms.Encrypt, kms.Decrypt, kms.ReEncryptFrom, kms.ReEncryptTo, kms.GenerateDataKey],
                    Resource=["*"],
                    Condition=Condition(
                        ArnLike("kms:EncryptionContext:aws:logs:arn", account_arn("logs", "log-group:*"))
                    ),
                ),
                Statement(
                    Effect=Allow,
                    Principal=Principal("Service", "cloudwatch.amazonaws.com"),
                    Action=[kms.Decrypt, kms.GenerateDataKey],
                    Resource=["*"],
                    Condition=Condition(StringEquals("aws:SourceAccount", AccountId)),
                ),
                _grants_only_for_aws_services(),
            ),
        )
    )


def _grants_only_for_aws_services() -> Statement:
    """Nobody creates a grant on the key directly; AWS services still do, for the resources they serve.

    A grant lets its grantee use the key without a policy saying so, and AWS services create grants
    on behalf of a user for the resources they encrypt ("The service creates a grant on behalf of a
    user in the account": https://docs.aws.amazon.com/kms/latest/developerguide/grants.html).
    ``kms:GrantIsForAWSResource`` is true exactly when "an AWS service that is integrated with AWS
    KMS sends the request on the principal's behalf"
    (https://docs.aws.amazon.com/kms/latest/developerguide/grant-authorization.html), and
    ``aws:PrincipalIsAWSService`` when the caller is an AWS service principal, so the deny leaves both
    alone: whichever of DynamoDB, Lambda, SQS and SNS creates a grant on this key does it on behalf
    of the deployer or of a role, which stays allowed. The roles' own ``kms:Decrypt`` and
    ``kms:GenerateDataKey`` and the service statements above are not grants and are untouched.
    This is the statement AWS Control Tower's CT.KMS.PR.3 requires
    (https://docs.aws.amazon.com/controltower/latest/userguide/kms-rules.html#ct-kms-pr-3-description).
    """
    return Statement(
        Effect=Deny,
        Principal=Principal("*"),
        Action=[kms.CreateGrant],
        Resource=["*"],
        Condition=Condition(BoolIfExists({"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"})),
    )


def _protected_table(settings: Settings, name: str, key: Key, **properties: Any) -> Table:
    return Table(
        settings.logical_id(name),
        BillingMode="PAY_PER_REQUEST",
        PointInTimeRecoverySpecification=PointInTimeRecoverySpecification(PointInTimeRecoveryEnabled=True),
        SSESpecification=SSESpecification(SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=GetAtt(key, "Arn")),
        DeletionProtectionEnabled=settings["DeletionProtection"],
        **KEEP_EXCEPT_ON_FAILED_CREATE,
        **properties,
    )


def add_appointments_table(template: Template, settings: Settings, key: Key) -> AppointmentsTableRef:
    """The booking app's table, or the existing one the props name. The system only reads it."""
    existing = settings.props.existing_appointments_table
    if existing is not None:
        return AppointmentsTableRef(
            name=existing.name,
            arn=account_arn("dynamodb", "table/${Name}", Name=existing.name),
            stream_arn=existing.stream_arn,
            resource=None,
            key_arn=existing.kms_key_arn,
        )
    table = template.add_resource(
        _protected_table(
            settings,
            "AppointmentsTable",
            key,
            TableName=settings.physical_name("Appointments"),
            AttributeDefinitions=[AttributeDefinition(AttributeName="appointmentId", AttributeType="S")],
            KeySchema=[KeySchema(AttributeName="appointmentId", KeyType="HASH")],
            # Only which item changed: the processor reads the item itself. (Changing the view type
            # makes a new stream, and so a new pipe: decided before the first deploy.)
            StreamSpecification=StreamSpecification(StreamViewType="KEYS_ONLY"),
        )
    )
    return AppointmentsTableRef(
        name=Ref(table),
        arn=GetAtt(table, "Arn"),
        stream_arn=GetAtt(table, "StreamArn"),
        resource=table,
        key_arn=GetAtt(key, "Arn"),
    )


def add_reminders_table(template: Template, settings: Settings, key: Key) -> Table:
    """One item per appointment and offset; ``DueIndex`` holds only the ones still to be sent."""
    return template.add_resource(
        _protected_table(
            settings,
            "RemindersTable",
            key,
            TableName=settings.physical_name("Reminders"),
            AttributeDefinitions=[
                AttributeDefinition(AttributeName="reminderId", AttributeType="S"),
                AttributeDefinition(AttributeName="dueShard", AttributeType="S"),
                AttributeDefinition(AttributeName="attemptAt", AttributeType="N"),
            ],
            KeySchema=[KeySchema(AttributeName="reminderId", KeyType="HASH")],
            GlobalSecondaryIndexes=[
                GlobalSecondaryIndex(
                    IndexName=DUE_INDEX,
                    KeySchema=[
                        KeySchema(AttributeName="dueShard", KeyType="HASH"),
                        KeySchema(AttributeName="attemptAt", KeyType="RANGE"),
                    ],
                    Projection=Projection(ProjectionType="ALL"),
                )
            ],
            TimeToLiveSpecification=TimeToLiveSpecification(AttributeName="expiresAt", Enabled=True),
        )
    )
