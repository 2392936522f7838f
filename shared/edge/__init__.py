"""Where work arrives: the route table (routes: each route's path, method, roles and handler, and `handle`), the
HTTP handlers (validate, answer JSON or problem+json), the Entra token checks (auth), the OpenAPI document, and
the offboarding queue's envelopes. function_app.py registers one HTTP function per row of the route table and
hands each queue and timer trigger to a function here in one line.

May import: every room; nothing imports the edge but function_app.py.
"""
