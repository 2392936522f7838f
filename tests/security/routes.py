"""The HTTP routes function_app.py declares, read from its source (decorators and the handler each passes to
http_api.handle), so the tests cover every route, including ones added later."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "function_app.py"


@dataclass(frozen=True)
class Route:
    function: str
    route: str
    methods: tuple[str, ...]
    anonymous: bool
    handler: str  # the handler's __name__ (what auth.POLICIES is keyed by)

    @property
    def openapi_path(self) -> str:
        return "/" + self.route


def _handler_name(node: ast.FunctionDef) -> str | None:
    for call in ast.walk(node):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "handle"
            and len(call.args) == 2
        ):
            target = call.args[1]
            if isinstance(target, ast.Attribute):
                return target.attr
            if isinstance(target, ast.Name):
                return target.id
    return None


# http_api exposes the decision handlers under short names; their __name__ is <action>_request.
_ALIASES = {"approve": "approve_request", "reject": "reject_request", "cancel": "cancel_request"}


def http_routes() -> list[Route]:
    routes = []
    for node in ast.parse(APP.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "route"
            ):
                continue
            kwargs = {k.arg: k.value for k in decorator.keywords}
            route = ast.literal_eval(kwargs["route"])
            methods = tuple(ast.literal_eval(kwargs["methods"])) if "methods" in kwargs else ("GET", "POST")
            level = kwargs.get("auth_level")
            anonymous = isinstance(level, ast.Attribute) and level.attr == "ANONYMOUS"
            handler = _handler_name(node) or "?"
            routes.append(Route(node.name, route, methods, anonymous, _ALIASES.get(handler, handler)))
    return routes
