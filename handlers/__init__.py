"""Lambda handlers, one module per function, inlined into the template as ``Code.ZipFile``.

A handler may import the standard library, boto3/botocore and its sibling modules (relative
imports); the build bundles the siblings into its ``index.py`` (``tapstack/sources.py``).
"""
