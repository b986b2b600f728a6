"""Lambda handlers, one module per function, inlined into the template as ``Code.ZipFile``.

Each module is self-contained: it may import only the standard library and boto3/botocore.
"""
