"""Commands that operate a deployed stack: ``doctor`` today, and the shared base (``deployed``) that
the ``backfill`` and ``status`` commands read the stack with.

They run with the operator's own AWS credentials and boto3, which the ``local`` extra installs.
"""
