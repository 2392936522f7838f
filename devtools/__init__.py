"""Development tools: the local stack (Azurite, Azure ML simulator, local Functions host), demo, benchmarks.

Nothing here is deployed (.funcignore excludes this folder)."""
