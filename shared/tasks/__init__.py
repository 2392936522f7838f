"""The task kinds a request fans out into, one module each: the scope walk down to the workspaces (scope), the
export of a workspace's endpoint families and of each experiment's runs (families), the rules that tie records
naming no creator to the subject (rules), the erasure of what was matched (erasure), a whole workspace's deletion
(workspace_delete) and the pipeline objects of stage 2 (pipelines). They stand on context (the task's context,
checkpoint and lease, spawning, the paging of a family's list); dispatch runs one queue message: it leases the
task, runs the handler of its kind and requeues or finishes it.

May import: core, aml, storage, runtime, evidence.
"""
