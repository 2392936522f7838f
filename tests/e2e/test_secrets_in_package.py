"""No credential of the corpus (tests/security/secret_corpus.py) reaches any file of an export package,
index.html included, wherever it was planted (run properties, tags, description, a datastore record), while
the ordinary values next to it are kept and the records say where something was taken out."""

from __future__ import annotations

import copy
import io
import json
import zipfile

import pytest
import requests

from devtools.amlsim.state import Record
from devtools.demo import container_client, submit, wait
from tests.security.secret_corpus import NESTED, ORDINARY, SHAPES

PLANTED_EXPERIMENT = "secrets-planted"
# Run properties are strings in run history (a boolean there would be the string "False")
ORDINARY_STRINGS = {k: str(v) for k, v in ORDINARY.items() if not isinstance(v, bool)}


def planted_fields() -> dict[str, object]:
    fields: dict[str, object] = {}
    for index, shape in enumerate(SHAPES):
        if shape.by_value:
            fields[f"note{index:02d}"] = shape.value  # under a name that says nothing
        if shape.field:
            fields[shape.field] = shape.value
    for _, nested, _ in NESTED:
        fields.update(nested)
    return fields


@pytest.fixture
def planted(sim):
    """A run of alice's (own experiment, so index.html shows it) and a datastore, both full of credentials."""
    ws = sorted(sim.tenant.workspaces.values(), key=lambda w: w.arm_id)[0]
    run = next(r for runs in ws.runs.values() for r in runs if r.owner == "alice")
    experiment = copy.deepcopy(ws.experiment_names[run.parent].body())
    experiment.update(name=PLANTED_EXPERIMENT, experimentId="5ec7e75e-0000-4000-8000-00000000a11c")
    body = copy.deepcopy(run.body())
    run_id = "secrets_planted_1705307760_5ec7e75e"
    body.update(
        runId=run_id,
        rootRunId=run_id,
        dataContainerId=f"dcid.{run_id}",
        experimentId=experiment["experimentId"],
        description=" | ".join(shape.value for shape in SHAPES if shape.by_value),
        properties={**planted_fields(), **ORDINARY_STRINGS},
        tags={f"t{index}": shape.value for index, shape in enumerate(SHAPES) if shape.by_value},
    )
    datastore = copy.deepcopy(next(iter(ws.datastores)).body())
    datastore.update(name="secretsplanted", tags=planted_fields())
    ws.add_experiment(Record(experiment["experimentId"], "alice", experiment), PLANTED_EXPERIMENT)
    ws.add_run(PLANTED_EXPERIMENT, Record(run_id, "alice", body))
    ws.datastores.add(Record("secretsplanted", None, datastore))
    yield ws
    ws.datastores.remove("secretsplanted")
    ws.runs.pop(PLANTED_EXPERIMENT)
    ws.metrics.pop(PLANTED_EXPERIMENT)
    ws.artifacts.pop(run_id)
    ws.run_index.pop(run_id)
    ws.experiment_names.pop(PLANTED_EXPERIMENT)
    ws.experiments.remove(experiment["experimentId"])


def test_no_credential_reaches_any_file_of_the_package(stack, sim, planted):
    # Given credentials planted in a run and a datastore, when the whole workspace is exported
    response = submit(
        stack, {"type": "export", "wholeWorkspace": True, "scope": {"workspaces": [planted.arm_id]}}
    )
    assert response.status_code == 202, response.text
    # (a whole-workspace export waits for a second person's approval, as an erasure does)
    assert response.json()["status"] == "awaiting_approval"
    approved = requests.post(
        f"{response.headers['Location']}:approve",
        json={},
        headers={"x-functions-key": stack.function_key},
        timeout=30,
    )
    assert approved.status_code == 200, approved.text
    view = wait(stack, response.headers["Location"], timeout=240)
    assert view["status"] == "completed", view["errors"]
    blob = container_client(stack).get_blob_client(f"{view['id']}/package.zip")
    package = zipfile.ZipFile(io.BytesIO(blob.download_blob().readall()))
    files = {name: package.read(name).decode() for name in package.namelist()}
    # Then no file, index.html included, holds any secret of the corpus
    assert "index.html" in files
    secrets = [shape.secret for shape in SHAPES] + [secret for _, _, secret in NESTED]
    leaks = sorted(
        {(name, secret[:12]) for name, text in files.items() for secret in secrets if secret in text}
    )
    assert leaks == []
    # And the planted run is exported with its ordinary values, its record naming where it was redacted
    runs = [
        json.loads(line)
        for name, text in files.items()
        if name.endswith("runs.jsonl") and PLANTED_EXPERIMENT in name
        for line in text.splitlines()
    ]
    assert [r["record"]["runId"] for r in runs] == ["secrets_planted_1705307760_5ec7e75e"]
    properties = runs[0]["record"]["properties"]
    assert {k: properties[k] for k in ORDINARY_STRINGS} == ORDINARY_STRINGS
    assert "properties.password" in runs[0]["redacted"]
    assert "description" in runs[0]["redacted"]
    assert "sklearn-classifier-comparison" in files["index.html"]  # the page shows the run it scrubbed
