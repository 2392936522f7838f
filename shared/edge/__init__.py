"""Where work arrives: the HTTP handlers (authenticate, authorize, validate, answer JSON or problem+json),
the access policies and Entra token checks (auth), the OpenAPI document, and the offboarding queue's
envelopes. function_app.py hands each trigger to a function here in one line.

May import: every room; nothing imports the edge but function_app.py.
"""
