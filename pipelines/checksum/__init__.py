"""The ``checksum`` pipeline: sha256 and size of two files. It proves the flow end to end.

Runnable on local files: ``python -m pipelines.checksum --first A --second B --out DIR``.
"""
