"""The domain package of the Azure ML data-subject-request service.

Importable and runnable without the Functions host: function_app.py only hands triggers over to it.

Its rooms, lowest first; a module imports its own room and the rooms below it, never above
(tests/unit/test_import_graph.py holds the rule, docs/architecture.md draws it):

    core       settings, records, matching, principal and roles, errors, outbound allow-list, telemetry
    aml        Azure ML client, endpoint catalog, shared call budget, scrubber, Graph identity resolution
    storage    request and task tables, queues, blobs and their read links
    runtime    the process-wide dependencies, built once (shared/runtime.py)
    evidence   export files, the package zip and index.html, the audit trail
    tasks      the task kinds a request fans out into
    lifecycle  submission, accept, plan, finalize, status, sweep, deadlines, callbacks
    edge       HTTP handlers, auth, OpenAPI, the offboarding queue
"""
