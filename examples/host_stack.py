"""A host stack that embeds tapstack next to its own resources.

The clinic already keeps its bookings in its own DynamoDB table; two reminder systems read it
(patients get reminders a day and an hour ahead, the lab team a week ahead), and the host
subscribes its own queue to the patients' delivery events.

    python examples/host_stack.py > host.yml
"""

from __future__ import annotations

import sys

import awacs.sqs as sqs
from awacs.aws import Allow, ArnEquals, Condition, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Output, Ref, Template
from troposphere.dynamodb import AttributeDefinition, KeySchema, StreamSpecification, Table
from troposphere.sns import SubscriptionResource
from troposphere.sqs import Queue, QueuePolicy

from tapstack import AppointmentReminders, ExistingAppointmentsTable, ReminderProps
from tapstack.render import to_yaml


def build() -> Template:
    template = Template(Description="Clinic bookings with appointment reminders")
    template.set_version("2010-09-09")
    bookings = template.add_resource(
        Table(
            "BookingsTable",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[AttributeDefinition(AttributeName="appointmentId", AttributeType="S")],
            KeySchema=[KeySchema(AttributeName="appointmentId", KeyType="HASH")],
            StreamSpecification=StreamSpecification(StreamViewType="NEW_AND_OLD_IMAGES"),
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
        )
    )
    existing = ExistingAppointmentsTable(name=Ref(bookings), stream_arn=GetAtt(bookings, "StreamArn"))
    patients = AppointmentReminders(
        template,
        ReminderProps(
            prefix="Patient",
            existing_appointments_table=existing,
            sender_email="reminders@clinic.example.com",
            reminder_offsets_minutes=(1440, 60),
            # Only the schedule stays configurable at deploy time; the rest is baked in.
            parameters=frozenset({"ScheduleExpression"}),
            environment_suffix="prod",
            log_retention_days=90,
        ),
    )
    AppointmentReminders(
        template,
        ReminderProps(
            prefix="Lab",
            existing_appointments_table=existing,
            sender_email="lab@clinic.example.com",
            reminder_offsets_minutes=(10080,),
            parameters=frozenset(),
            environment_suffix="prod",
            outputs=False,
        ),
    )
    events = template.add_resource(
        Queue(
            "DeliveryEventsQueue",
            SqsManagedSseEnabled=True,
            MessageRetentionPeriod=345600,
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    template.add_resource(
        QueuePolicy(
            "DeliveryEventsQueuePolicy",
            Queues=[Ref(events)],
            PolicyDocument=PolicyDocument(
                Statement=[
                    Statement(
                        Effect=Allow,
                        Principal=Principal("Service", "sns.amazonaws.com"),
                        Action=[sqs.SendMessage],
                        Resource=[GetAtt(events, "Arn")],
                        Condition=Condition(ArnEquals("aws:SourceArn", Ref(patients.topic))),
                    )
                ]
            ),
        )
    )
    template.add_resource(
        SubscriptionResource(
            "DeliveryEventsSubscription",
            TopicArn=Ref(patients.topic),
            Protocol="sqs",
            Endpoint=GetAtt(events, "Arn"),
            RawMessageDelivery=True,
        )
    )
    template.add_output(Output("PatientRemindersTable", Value=Ref(patients.reminders_table)))
    return template


if __name__ == "__main__":
    sys.stdout.write(to_yaml(build()))
