"""What a report or notice says happened: the incident's summary and the lake rows that show it.

Drivers get only an `Action`. Its evidence comes, in this order, from:
1. `action.params["evidence"]`: an `Evidence` as a dict (the caller built it);
2. the incident, found by `action.incident_id` through the driver's
   `incident_lookup` option (a callable id -> Incident) or, failing that,
   by correlating the alerts stored in the lake (`lake` option); its rows are
   what the alerts' evidence SQL returns now, kept to the rows that name the
   reported addresses.
"""
from __future__ import annotations

import ipaddress
import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from necoma.knowledge.incident import Incident

log = logging.getLogger(__name__)

IncidentLookup = Callable[[str], "Incident | None"]
# The malware family behind a detector, for notices and X-ARF's bot_name (as knowledge.stix names it).
MALWARE = {"zeus_dga": "GameOver ZeuS"}


class EvidenceError(ValueError):
    """No evidence could be built for an action; the message says why."""


class Evidence(BaseModel):
    """An incident as reports and notices quote it."""

    model_config = ConfigDict(extra="forbid")
    incident_id: str
    title: str
    category: str
    detectors: list[str] = Field(default_factory=list)
    window_start: datetime
    window_end: datetime
    rating: int | None = None
    subjects: list[tuple[str, str]] = Field(default_factory=list)  # (role, value)
    metrics: dict[str, float] = Field(default_factory=dict)
    rows: list[dict[str, Any]] = Field(default_factory=list)  # lake rows (flows, dns, ...) that show the incident

    @property
    def malware(self) -> str | None:
        return next((MALWARE[d] for d in self.detectors if d in MALWARE), None)

    def roles_of(self, value: str) -> list[str]:
        return sorted({r for r, v in self.subjects if v == value})

    def values_with(self, *roles: str) -> list[str]:
        return sorted({v for r, v in self.subjects if r in roles})

    def rows_about(self, values: set[str], limit: int) -> list[dict[str, Any]]:
        """Rows in which any column equals one of `values` (addresses or names), at most `limit`."""
        return [r for r in self.rows if any(str(v) in values for v in r.values() if v is not None)][:limit]


def from_incident(incident: Incident, rows: list[dict[str, Any]]) -> Evidence:
    metrics: dict[str, float] = {}
    for a in incident.alerts:  # summed over the incident's alerts: they cover different windows or detectors
        for k, v in a.metrics.items():
            metrics[k] = metrics.get(k, 0.0) + v
    return Evidence(incident_id=incident.id, title=incident.title, category=incident.category,
                    detectors=incident.detectors, window_start=incident.window_start, window_end=incident.window_end,
                    rating=incident.rating, subjects=[(s.role, s.value) for s in incident.subjects],
                    metrics=metrics, rows=rows)


def lake_lookup(lake: Path) -> IncidentLookup:
    """Find an incident by id by correlating the alerts stored in the lake (as `necoma run` does)."""

    def lookup(incident_id: str) -> Incident | None:
        from necoma.analyze.runner import load_alerts
        from necoma.knowledge.correlate import correlate

        return next((i for i in correlate(load_alerts(lake)) if i.id == incident_id), None)

    return lookup


def lake_rows(lake: Path, incident: Incident, limit: int) -> list[dict[str, Any]]:
    """The rows the incident's alerts' evidence SQL returns now (DuckDB over the lake), at most `limit`."""
    from necoma.lake.engines import open_engine

    rows: list[dict[str, Any]] = []
    with open_engine("duckdb", lake) as eng:
        for a in incident.alerts:
            if not a.evidence or len(rows) >= limit:
                continue
            try:
                rows += eng.query(a.evidence)[: limit - len(rows)]
            except Exception as exc:  # a table may be gone since the alert; report what remains
                log.warning("evidence of alert %s did not run: %s", a.id, exc)
    return rows


def evidence_for(action, lookup: IncidentLookup | None, lake: Path | None, row_limit: int) -> Evidence:
    """The evidence of `action` (see the module doc for where it comes from)."""
    given = action.params.get("evidence")
    if given is not None:
        try:
            return Evidence.model_validate(given)
        except ValidationError as exc:
            raise EvidenceError(f"action {action.id}: params.evidence is invalid: {exc.errors()[0]['msg']} "
                                f"at {'.'.join(map(str, exc.errors()[0]['loc']))}") from None
    if not action.incident_id:
        raise EvidenceError(f"action {action.id} names no incident and carries no params.evidence")
    if lookup is None and lake is None:
        raise EvidenceError(f"action {action.id}: no incident_lookup or lake configured to find incident "
                            f"{action.incident_id}, and no params.evidence")
    incident = (lookup or lake_lookup(lake))(action.incident_id)  # type: ignore[arg-type]
    if incident is None:
        raise EvidenceError(f"incident {action.incident_id} of action {action.id} was not found")
    return from_incident(incident, lake_rows(lake, incident, row_limit) if lake is not None else [])


def is_address(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
        return True
    except ValueError:
        return False
