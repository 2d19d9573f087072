"""The detector contract: one small module per analysis, like a Zeek script.

A detector module declares, in this order:

1. what it raises — `name`, `title` (one line), `raises` (the alert's subjects
   and roles), the lake `tables` it reads and its `schedule`;
2. every threshold — a `Params` model whose fields carry a default and a
   one-line description (overridable in necoma.toml under `[detectors.NAME]`);
3. the logic — SQL in necoma's portable dialect (`necoma.lake.engines.base`)
   run through `ctx.query`, plus a little Python scoring that returns
   `Alert` records.

    class NtpAmplifier(Detector):
        name = "ntp_amplifier"
        title = "NTP servers reflecting large monlist responses at victims"
        raises = "one alert per victim and bin: victim, amplifiers"
        tables = ("flows",)
        schedule = Schedule.hourly()

        class Params(DetectorParams):
            min_bytes: int = Field(1_000_000, description="...")

        def detect(self, ctx: Context) -> list[Alert]:
            rows = ctx.query(SQL, min_bytes=self.params.min_bytes)
            ...

SQL sees `:start` and `:end` (the analysis range, UTC, end exclusive), every
parameter by name, and the macro `time_bin(col)`, which truncates a
timestamp to the start of the detector's schedule bin on every engine
(`time_bin(col, 5)`: to the start of its 5-minute bin; any width dividing a day).
"""
from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlglot import exp

from necoma.analyze.alert import Alert, Subject
from necoma.lake.engines.base import Engine, render


@dataclass(frozen=True)
class Schedule:
    """How often a detector runs and the width of the time bins it reports on."""

    kind: str  # daily | hourly | sliding
    minutes: int

    @classmethod
    def daily(cls) -> "Schedule":
        return cls("daily", 1440)

    @classmethod
    def hourly(cls) -> "Schedule":
        return cls("hourly", 60)

    @classmethod
    def sliding(cls, minutes: int) -> "Schedule":
        if minutes <= 0 or 1440 % minutes:
            raise ValueError("a sliding window must divide a day (1, 5, 10, 15, 30, 60, ... minutes)")
        return cls("sliding", minutes)

    def __str__(self) -> str:
        return self.kind if self.kind != "sliding" else f"every {self.minutes} min"

    def bin_sql(self, column: exp.Expression, epoch: bool = False) -> exp.Expression:
        """The bin of a UTC timestamp column. `epoch`: the same bins by integer arithmetic on the epoch (bins
        divide a day, so they align with UTC midnight), for DuckDB, whose date_trunc and time_bucket on
        TIMESTAMPTZ go through ICU calendars: ~5× slower, and the traffic detectors bin every row."""
        col = column.sql("duckdb")
        if epoch:
            text = f"to_timestamp(epoch_us({col}) // {self.minutes * 60_000_000} * {self.minutes * 60})"
        elif self.minutes == 1440:
            text = f"date_trunc('day', {col})"
        elif self.minutes == 60:
            text = f"date_trunc('hour', {col})"
        else:
            text = f"time_bucket(INTERVAL '{self.minutes} minutes', {col})"
        return exp.maybe_parse(text, dialect="duckdb")

    def floor(self, t: dt.datetime) -> dt.datetime:
        t = t.astimezone(dt.timezone.utc)
        midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
        k = int((t - midnight).total_seconds() // (self.minutes * 60))
        return midnight + dt.timedelta(minutes=k * self.minutes)

    def ceil(self, t: dt.datetime) -> dt.datetime:
        f = self.floor(t)
        return f if f == t.astimezone(dt.timezone.utc) else f + dt.timedelta(minutes=self.minutes)


class DetectorParams(BaseModel):
    """Base of every detector's parameters: typed, documented, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamError(ValueError):
    """A `[detectors.NAME]` override is invalid."""


@dataclass
class Context:
    """What a detector sees during one run: the engine, the range, enrichment."""

    engine: Engine
    start: dt.datetime
    end: dt.datetime
    schedule: Schedule
    enricher: Any = None  # necoma.enrich.Enricher, or None when not configured
    detector: str = ""
    queries: list[str] = field(default_factory=list)  # every SQL run, for --verbose and docs

    def _expand(self, sql: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        bound = {"start": self.start, "end": self.end, **params}
        return sql, bound

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Run portable SQL; `:start`, `:end` and `time_bin(col)` are provided."""
        sql, bound = self._expand(sql, params)
        self.queries.append(sql)
        return self.engine.query(self.expand_macros(sql), bound)

    def evidence(self, sql: str, **params: Any) -> str:
        """The SQL, with every value bound, that reproduces a finding (stored in the alert)."""
        sql, bound = self._expand(sql, params)
        return render(self.expand_macros(sql), bound)

    def expand_macros(self, sql: str) -> str:
        return _expand_macros(sql, self.schedule, getattr(self.engine, "name", "") == "duckdb")

    def bin_end(self, bin_start: dt.datetime) -> dt.datetime:
        return bin_start + dt.timedelta(minutes=self.schedule.minutes)

    def alert(self, *, window_start: dt.datetime, window_end: dt.datetime | None = None, **fields: Any) -> Alert:
        return Alert(
            detector=self.detector,
            window_start=window_start,
            window_end=window_end or self.bin_end(window_start),
            **fields,
        )

    def subject(self, role: str, value: str, weight: float | None = None, *, geo: bool = False) -> Subject:
        """A subject; with `geo=True` and enrichment configured, with country and AS."""
        extra: dict[str, Any] = {}
        if geo and self.enricher is not None:
            extra = self.enricher.ip(value)
        return Subject(role=role, value=value, weight=weight, **extra)


# `time_bin(col)` / `time_bin(col, N)` over a plain (optionally qualified) column: every detector writes it so.
_TIME_BIN = re.compile(r"\btime_bin\(\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\s*(?:,\s*(\d+)\s*)?\)", re.IGNORECASE)


@lru_cache(maxsize=1024)
def _expand_macros(sql: str, schedule: Schedule, epoch: bool = False) -> str:
    """`time_bin(col)` rewritten for the schedule, `time_bin(col, minutes)` for bins of that width; cached,
    detectors run the same SQL many times.

    Plain columns are rewritten in the text: parsing and regenerating the whole statement with sqlglot
    cost as much again as the engine's own translation (a fifth of a second per daily run at 10 M rows,
    all of it single-threaded); anything else takes the parse."""
    def text(m: re.Match) -> str:
        return _bin_schedule(schedule, m[2]).bin_sql(exp.column(*reversed(m[1].split("."))), epoch).sql("duckdb")

    fast = _TIME_BIN.sub(text, sql)
    if "time_bin" not in fast.lower():
        return fast
    return _expand_parsed(sql, schedule, epoch)


def _bin_schedule(schedule: Schedule, minutes: str | None) -> Schedule:
    """The bins of `time_bin(col)` (the detector's schedule) or of `time_bin(col, minutes)`."""
    return schedule if minutes is None else Schedule.sliding(int(minutes))


def _expand_parsed(sql: str, schedule: Schedule, epoch: bool) -> str:
    import sqlglot

    tree = sqlglot.parse_one(sql, read="duckdb")

    def rewrite(node: exp.Expression) -> exp.Expression:
        if not (isinstance(node, exp.Anonymous) and node.name.lower() == "time_bin" and len(node.expressions) in (1, 2)):
            return node
        width = node.expressions[1] if len(node.expressions) == 2 else None
        if width is not None and not (isinstance(width, exp.Literal) and width.is_int):
            raise ValueError(f"time_bin's width must be a whole number of minutes, got {width.sql()}")
        return _bin_schedule(schedule, width and width.name).bin_sql(node.expressions[0], epoch)

    return tree.transform(rewrite).sql("duckdb")


class Detector(ABC):
    """Base class of every detector; see the module docstring for the contract."""

    name: ClassVar[str]
    title: ClassVar[str]
    raises: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    schedule: ClassVar[Schedule]
    history: ClassVar[dt.timedelta] = dt.timedelta(0)  # data before `start` the detector reads (baselines)
    Params: ClassVar[type[DetectorParams]] = DetectorParams

    def __init__(self, params: DetectorParams | Mapping[str, Any] | None = None) -> None:
        if isinstance(params, DetectorParams):
            self.params = params
        else:
            try:
                self.params = self.Params(**dict(params or {}))
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ParamError(f"[detectors.{self.name}]: {problems}") from None

    @abstractmethod
    def detect(self, ctx: Context) -> list[Alert]:
        """Find what this detector finds in [ctx.start, ctx.end); return alerts."""

    @classmethod
    def describe_params(cls) -> list[tuple[str, Any, str]]:
        """(name, default, one-line doc) of every parameter, for docs and --help."""
        return [(n, f.default, f.description or "") for n, f in cls.Params.model_fields.items()]

    @classmethod
    def doc(cls) -> str:
        """The module docstring: what it finds and how."""
        import sys

        return (sys.modules[cls.__module__].__doc__ or "").strip()
