"""Azure access: the Azure ML REST client (managed-identity tokens, allow-listed hosts, retries, throttling,
paging), the endpoint catalog (E1-E27, D1-D5 as data), the call budget shared through Table storage, the
scrubber that keeps credentials out of exported records, and the subject's identifiers resolved through
Microsoft Graph.

May import: core.
"""
