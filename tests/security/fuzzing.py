"""Schemathesis's engine against the local host: the phases asked for, within a budget, and its figures.

Used by tests/security/test_openapi.py (a bounded run in `make test`) and by `make fuzz` (the long run,
devtools/fuzz.py, whose figures go into docs/security.md). The checks are the contract's: no 5xx, documented
status codes, content types, headers and response schemas, and invalid input refused with a 4xx.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.openapi import from_dict

PHASES = ("examples", "coverage", "fuzzing", "stateful")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
)
REJECTIONS = ["400", "401", "403", "404", "405", "409", "413", "415", "422", "428", "429"]
# The checks whose failure means an answer the document does not describe.
SCHEMA_CHECKS = frozenset(CHECKS) - {"not_a_server_error", "negative_data_rejection"}


@dataclass
class Figures:
    """What one run did: requests sent per phase, statuses, and every failed check."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    failed_checks: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def schema_violations(self) -> int:
        return sum(n for name, n in self.failed_checks.items() if name in SCHEMA_CHECKS)

    def line(self) -> str:
        phases = ", ".join(f"{phase} {self.cases[phase]}" for phase in PHASES if phase in self.cases)
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        return (
            f"{self.total} cases ({phases}) in {self.seconds:.0f} s; statuses {statuses}; "
            f"5xx {self.server_errors}; schema violations {self.schema_violations}; "
            f"failed checks {dict(self.failed_checks) or 0}"
        )


def config(
    base_url: str,
    headers: Mapping[str, str],
    *,
    phases: Iterable[str],
    max_examples: int,
    max_steps: int,
    unexpected_methods: Iterable[str] | None = None,
    coverage_mode: str = "all",
    seed: int = 17,
) -> SchemathesisConfig:
    """One project: the host, its headers, the contract's checks only, the phases asked for."""
    chosen = set(phases)
    return SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "base-url": base_url,
            "headers": dict(headers),
            "workers": 1,
            "generation": {"max-examples": max_examples, "database": "none"},
            # 413 (a body over the size limit) is a refusal the document lists, as 400, 415 and 422 are
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "negative_data_rejection": {"enabled": True, "expected-statuses": REJECTIONS},
            },
            "phases": {
                "examples": {"enabled": "examples" in chosen},
                "coverage": {
                    "enabled": "coverage" in chosen,
                    "generation": {"mode": coverage_mode},
                    **(
                        {"unexpected-methods": list(unexpected_methods)}
                        if unexpected_methods is not None
                        else {}
                    ),
                },
                "fuzzing": {"enabled": "fuzzing" in chosen},
                "stateful": {"enabled": "stateful" in chosen, "max-steps": max_steps},
            },
        }
    )


def run(document: dict[str, Any], settings: SchemathesisConfig) -> Figures:
    """Run the engine over `document` and count what it sent and what failed."""
    figures = Figures()
    started = time.monotonic()
    schema = from_dict(document, config=settings)
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _count(figures, event.phase.value, event.recorder)
        elif isinstance(event, events.NonFatalError):
            figures.errors.append(f"{event.label}: {str(event.value)[:300]}")
        elif isinstance(event, events.FatalError):
            figures.errors.append(f"fatal: {str(event.exception)[:300]}")
    figures.seconds = time.monotonic() - started
    return figures


def _count(figures: Figures, phase: str, recorder: Any) -> None:
    for interaction in recorder.interactions.values():
        figures.cases[phase] += 1
        if interaction.response is not None:
            figures.statuses[interaction.response.status_code] += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status != Status.FAILURE:
                continue
            figures.failed_checks[check.name] += 1
            case = recorder.cases[case_id].value if case_id in recorder.cases else None
            where = (
                f"{case.method} {case.path} query={case.query} body={str(case.body)[:1500]}"
                if case is not None
                else recorder.label
            )
            info = check.failure_info
            detail = str(getattr(info, "failure", info))[:1500] if info is not None else ""
            figures.failures.append(f"[{phase}] {check.name} {where}: {detail}")
