"""tapstack: the CloudFormation template of an appointment-reminder system, built with troposphere."""

from tapstack.props import PARAMETER_NAMES, ExistingAppointmentsTable, ReminderProps
from tapstack.stack import AppointmentReminders, StreamReadersWarning, build_template

__version__ = "0.1.0"

__all__ = [
    "PARAMETER_NAMES",
    "AppointmentReminders",
    "ExistingAppointmentsTable",
    "ReminderProps",
    "StreamReadersWarning",
    "__version__",
    "build_template",
]
