"""Reading the Bicep templates and shared/core/settings.py for the infrastructure tests (no Azure, no Bicep CLI)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser

import shared.core.settings as settings_module

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
FUNCTION_BICEP = INFRA / "app" / "function.bicep"
MAIN_BICEP = INFRA / "main.bicep"

# Settings the platform reads (and shared/core/telemetry.py too): telemetry to Application Insights with Entra auth.
PLATFORM_SETTINGS = frozenset(
    {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
)

# An app-setting name: UPPER_SNAKE (DSR_ARM_BASE_URL) or an identity-based connection property
# (AzureWebJobsStorage__clientId). Queue, table and container names (dsr-plan, DsrRequests) are neither,
# and neither is the bare connection prefix AzureWebJobsStorage.
SETTING_NAME = re.compile(r"^(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Za-z][A-Za-z0-9]*__[A-Za-z][A-Za-z0-9]*)$")


@cache
def parse(path: Path) -> dict[str, Any]:
    return cast("dict[str, Any]", BicepParser().parse(file_path=path))


def bicep_app_settings() -> dict[str, Any]:
    """name -> value expression (pycep form) of the Function App's siteConfig.appSettings."""
    site = parse(FUNCTION_BICEP)["resources"]["app"]["config"]
    return {entry["name"]: entry["value"] for entry in site["properties"]["siteConfig"]["appSettings"]}


def code_settings() -> set[str]:
    """Every app setting shared/core/settings.py names.

    The module's APP_SETTINGS tuple when it has one; otherwise each module-level Final string constant whose
    value has the shape of an app-setting name, less the DEFAULT_* values.
    """
    declared = getattr(settings_module, "APP_SETTINGS", None)
    if declared is not None:
        return set(declared)
    finals = getattr(settings_module, "__annotations__", {})
    return {
        value
        for name, value in vars(settings_module).items()
        if name in finals
        and not name.startswith("DEFAULT_")
        and isinstance(value, str)
        and SETTING_NAME.match(value)
    }


def _resolve(node: ast.expr) -> Any:
    """The value of a settings constant or literal the code passes, or None."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return vars(settings_module).get(node.id)
    if isinstance(node, ast.Attribute):  # settings.X, names.X
        return vars(settings_module).get(node.attr)
    return None


def env_reads(paths: list[Path]) -> dict[str, str | None]:
    """Setting names the code reads from the environment -> its default ("" when none), found in the source.

    Recognised: required(X), optional(X, default), env.get(X[, d]), os.environ.get(X[, d]), os.getenv(X[, d]),
    os.environ[X].
    """
    reads: dict[str, str | None] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            name: Any = None
            default: Any = None
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                is_helper = isinstance(func, ast.Name) and func.id in {"required", "optional"}
                is_get = isinstance(func, ast.Attribute) and func.attr in {"get", "getenv"}
                if is_helper or is_get:
                    name = _resolve(node.args[0])
                    default = _resolve(node.args[1]) if len(node.args) > 1 else None
                    if is_get and not (isinstance(name, str) and SETTING_NAME.match(name)):
                        name = None  # some other mapping's get()
            elif (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "environ"
            ):
                name = _resolve(node.slice)
            if isinstance(name, str):
                reads[name] = default if isinstance(default, str) else reads.get(name)
    return reads


def source_files() -> list[Path]:
    return [*sorted((ROOT / "shared").rglob("*.py")), ROOT / "function_app.py"]


def main_param_default(name: str) -> Any:
    return parse(MAIN_BICEP)["parameters"][name].get("default")


def setting_param(value: Any) -> str | None:
    """The function.bicep parameter an app-setting value is made of: x, string(x), or x ? 'true' : 'false'."""
    params = parse(FUNCTION_BICEP)["parameters"]
    if isinstance(value, str) and value in params:
        return value
    if isinstance(value, dict) and "function" in value and value["function"]["type"] == "string":
        inner = value["function"]["parameters"]["value_to_convert"]
        return inner if inner in params else None
    if isinstance(value, dict) and "operator" in value and value["operator"]["type"] == "conditional":
        operands = value["operator"]["operands"]
        if (operands["true_value"], operands["false_value"]) == ("true", "false"):
            condition = operands["condition"]
            return condition if isinstance(condition, str) and condition in params else None
    return None


def as_setting_text(value: Any) -> str:
    """A Bicep default as the app-setting text it becomes (true -> 'true', 240 -> '240')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
