"""`python -m shared.edge.openapi`: rewrite docs/openapi.json from the route table."""

from __future__ import annotations

import sys

from shared.edge import openapi, routes

openapi.DOCUMENT_PATH.write_text(openapi.text(routes.ROUTES))
print(f"wrote {openapi.DOCUMENT_PATH}", file=sys.stderr)
