"""Run the generated template on moto, in-process: ``python -m tapstack simulate``.

Needs the ``local`` extra (moto, boto3, time-machine).
"""

from tapstack.local.deployment import FunctionError, LocalDeployment, load_template
from tapstack.local.functions import Fault
from tapstack.local.resolve import UnsupportedTemplate

__all__ = ["Fault", "FunctionError", "LocalDeployment", "UnsupportedTemplate", "load_template"]
