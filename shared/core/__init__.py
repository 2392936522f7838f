"""The product's vocabulary, imported by every other room: settings (every app setting, by name), the
request and task records (model), who a record belongs to (matching), who is calling (principal and the
app roles), the errors the API turns into problem+json, the outbound allow-list, HTTP plumbing every client
shares (transport) and telemetry.

May import: nothing of the product outside this room. Knows no Azure SDK client, no storage, no HTTP route.
"""
