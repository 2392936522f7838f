"""The task kinds a request fans out into: the scope walk, each endpoint family's export, the erasure of
what was matched, workspace deletion, pipeline objects.

May import: core, aml, storage, runtime, evidence.
"""
