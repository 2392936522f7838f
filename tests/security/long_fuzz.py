"""`make fuzz`: schemathesis's four phases against the local host with a budget of >= 3,000 cases, its figures
written into docs/security.md (between the fuzz markers). Not collected by `make test` (the file name does not
start with test_); `make fuzz` names it. The bounded run of every `make test` is in test_openapi.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.security import fuzzing
from tests.security.conftest import Api
from tests.security.idp import OFFICER

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
BEGIN, END = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"


def figures_text(figures: fuzzing.Figures, budget: str) -> str:
    phases = " | ".join(str(figures.cases[phase]) for phase in fuzzing.PHASES)
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(figures.statuses.items()))
    return "\n".join(
        [
            BEGIN,
            f"Last `make fuzz` ({budget}; {figures.seconds:.0f} s on the local stack):",
            "",
            "| cases | examples | coverage | fuzzing | stateful | 5xx | schema violations | other failed checks |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| {figures.total} | {phases} | {figures.server_errors} | {figures.schema_violations} | "
            f"{sum(figures.failed_checks.values()) - figures.schema_violations} |",
            "",
            f"Statuses: {statuses}.",
            END,
        ]
    )


@pytest.mark.timeout(3600)
def test_long_fuzz_run(api: Api, capsys: Any) -> None:
    document = api.session.get(f"{api.stack.api_url}/v1/openapi.json").json()
    headers = {"x-functions-key": api.stack.function_key, **api.idp.headers(OFFICER)}
    max_examples, max_steps = 150, 80
    budget = fuzzing.config(
        api.stack.api_url, headers, phases=fuzzing.PHASES, max_examples=max_examples, max_steps=max_steps
    )
    figures = fuzzing.run(document, budget)
    with capsys.disabled():
        print(f"\n[schemathesis, long] {figures.line()}")
        for failure in figures.failures[:20]:
            print(failure)
    text = figures_text(
        figures,
        f"max-examples {max_examples}, stateful max-steps {max_steps}, coverage positive and negative with every "
        "unexpected method",
    )
    DOC.write_text(re.sub(f"{BEGIN}.*?{END}", lambda _m: text, DOC.read_text(), flags=re.DOTALL))
    assert (figures.errors, figures.failures) == ([], [])
    assert figures.server_errors == 0
    assert figures.total >= 3000
