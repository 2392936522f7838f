"""A request's life: what a caller may submit (submission), accept, approve, plan, finalize, the status
anyone can poll, sweep and purge (workflow), deadlines and their extension, and the signed callbacks.

May import: every room below it (core, aml, storage, runtime, evidence, tasks); never the edge.
"""
