"""Human-readable output: a request's status, the list table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from dsr_cli.progress import family_lines

TERMINAL = frozenset({"completed", "completed_with_errors", "failed", "rejected", "cancelled"})


def when(value: str | None) -> str:
    """An ISO 8601 instant as `2026-01-31 14:05Z` (as given when it does not parse)."""
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%MZ")


def parse_instant(value: str) -> dt.datetime:
    """ISO 8601 date or date-time; naive means UTC. ValueError when it is neither."""
    moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def is_overdue(item: dict[str, Any], now: dt.datetime | None = None) -> bool:
    """The API's judgement when it answers one (a summary's `overdue`, a status's `deadline.state`); otherwise
    open and past `dueAt`."""
    if "overdue" in item:
        return bool(item["overdue"])
    deadline = item.get("deadline")
    if isinstance(deadline, dict) and deadline.get("state"):
        return deadline["state"] == "overdue"
    if item.get("status") in TERMINAL or not item.get("dueAt"):
        return False
    try:
        return parse_instant(str(item["dueAt"])) < (now or dt.datetime.now(dt.UTC))
    except ValueError:
        return False


def _who(principal: Any) -> str:
    if not isinstance(principal, dict):
        return ""
    name = principal.get("name") or principal.get("id") or "?"
    return f"{name} ({principal['source']})" if principal.get("source") else str(name)


def _error_line(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    where = " ".join(str(error[k]) for k in ("family", "task") if error.get(k))
    why = error.get("reason") or error.get("message") or error.get("detail") or ""
    return f"{where}: {why}" if where else str(why)


def status_text(view: dict[str, Any]) -> list[str]:
    kind = str(view.get("type", "?")) + (" (dry run)" if view.get("dryRun") else "")
    rows: list[tuple[str, str]] = [
        ("request", f"{view.get('id')}  {kind}"),
        ("status", str(view.get("status"))),
    ]
    if view.get("reference"):
        rows.append(("reference", str(view["reference"])))
    due = when(view.get("dueAt"))
    deadline: dict[str, Any] = view["deadline"] if isinstance(view.get("deadline"), dict) else {}
    if is_overdue(view):
        due += "  OVERDUE"
    elif deadline.get("state") == "near_due":
        due += "  near due"
    extension = view.get("extension") or deadline.get("extension")
    if isinstance(extension, dict):
        due += f"  (extended by {extension.get('months')} month(s): {extension.get('reason', '')})"
    rows += [("received", when(view.get("receivedAt"))), ("due", due)]
    if view.get("completedAt"):
        rows.append(("completed", when(view["completedAt"])))
    if view.get("submittedBy"):
        rows.append(("submitted by", _who(view["submittedBy"])))
    decision = view.get("decision")
    if isinstance(decision, dict):
        text = f"{decision.get('action')} by {_who(decision.get('by'))} at {when(decision.get('at'))}"
        rows.append(("decision", text + (f": {decision['reason']}" if decision.get("reason") else "")))
    links = view.get("links") or {}
    if links.get("package"):
        until = f", until {when(view['packageExpiresAt'])}" if view.get("packageExpiresAt") else ""
        rows.append(("package", f"dsr download {view.get('id')}{until}"))
    callback: dict[str, Any] = view["callback"] if isinstance(view.get("callback"), dict) else {}
    deliveries = callback.get("deliveries", view.get("callbacks"))
    if callback or deliveries:
        deliveries = [d for d in deliveries or [] if isinstance(d, dict)]
        text = f"{callback['url']}: " if callback.get("url") else ""
        text += f"{len(deliveries)} deliver{'y' if len(deliveries) == 1 else 'ies'}"
        if deliveries:
            last = deliveries[-1]
            keys = ("event", "status", "attempts", "lastStatus", "lastError")
            text += "; last: " + ", ".join(f"{k} {last[k]}" for k in keys if last.get(k) is not None)
        rows.append(("callback", text))
    width = max([len(label) for label, _ in rows] + [len("submitted by")])
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    if view.get("progress"):
        lines.append("progress")
        lines += ["  " + line for line in family_lines(view)]
    errors = view.get("errors") or []
    if errors:
        lines.append(f"errors ({len(errors)})")
        lines += [f"  - {_error_line(e)}" for e in errors]
    return lines


LIST_COLUMNS: Sequence[tuple[str, str]] = (
    ("ID", "id"),
    ("TYPE", "type"),
    ("STATUS", "status"),
    ("RECEIVED", "receivedAt"),
    ("DUE", "dueAt"),
    ("OVERDUE", "overdue"),
    ("SOURCE", "source"),
    ("REFERENCE", "reference"),
)


def table(items: Sequence[dict[str, Any]], now: dt.datetime | None = None) -> list[str]:
    rows = [[title for title, _ in LIST_COLUMNS]]
    for item in items:
        row = []
        for _, key in LIST_COLUMNS:
            if key == "overdue":
                row.append("yes" if is_overdue(item, now) else "")
            elif key in ("receivedAt", "dueAt"):
                row.append(when(item.get(key)))
            elif key == "type":
                row.append(str(item.get("type") or "") + (" (dry run)" if item.get("dryRun") else ""))
            else:
                row.append(str(item.get(key) or ""))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_COLUMNS))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
