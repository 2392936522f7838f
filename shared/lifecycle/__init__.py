"""A request's life: what a caller may submit (submission); intake: store, start or schedule it (intake);
approve, reject, cancel, retry (decisions); its root tasks (planning); finalize: next stage, erasure record,
manifest, package, final status (completion); the status anyone can poll (status); poison messages and the
sweep (recovery); the package's retention and purge (retention); the later checks of an erased workspace
(workspace_checks); deadlines and their extension (deadlines); the signed callbacks (callbacks). Every
audited change of a request goes through `changes` (read with the ETag, change, write if-match, audit).

May import: every room below it (core, aml, storage, runtime, evidence, tasks); never the edge.
"""
