"""What the product hands over and keeps as proof: the export files written as staged blocks, the package
zip and its index.html, and the tamper-evident audit trail.

May import: core, aml (the catalog's titles), storage, runtime.
"""
