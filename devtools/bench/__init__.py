"""`make bench`: the product measured against the obvious way, the API's own limits, scale-out, memory and
intake, on the local stack; writes docs/benchmarks.md and docs/benchmarks.png (see __main__)."""
