"""The fast chaos soak: faults, a killed host and an Azurite restart, and still nothing lost or done twice.

`make soak` runs the long version (devtools/soak.py); this one keeps `make test` short (about 40 s).
"""

from devtools import soak


def test_a_short_chaos_soak_loses_nothing_and_deletes_nothing_extra():
    lines: list[str] = []
    report = soak.run(
        rounds=1,
        hosts=2,
        kills=1,
        restart_azurite=True,
        fault_probability=0.05,
        deadline_s=240,
        chaos_within_s=8,
        log=lines.append,
    )
    assert report.not_terminal == [], lines
    assert report.requests == 6
    assert report.azurite_restarts == 1
    assert report.host_kills == 1
    assert report.host_kills_in_flight == 1, lines
    assert sum(report.faults.values()) > 0
    assert report.records_compared > 0
    assert report.mismatches == []
    assert report.over_deletions == []
    assert report.missed_deletions == []
    assert report.double_deletes == []
    assert report.dry_run_deletes == 0
    assert report.statuses["export:completed"] == 3
