"""What the product hands over and keeps as proof: the export files written as staged blocks, manifest.json
and erasure-record.json (manifest), the package zip and its index.html, and the tamper-evident audit trail.

May import: core, aml (the catalog), storage, runtime.
"""
