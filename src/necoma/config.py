"""One typed settings model, read from necoma.toml.

The file is found from `--config`, else `NECOMA_CONFIG`, else `./necoma.toml`
if it exists; with no file every default applies (data under ./necoma-data).
Every tunable lives here with its meaning, so `necoma config show` can print
them all, as FastNetMon's config file does.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LakeSettings(_Section):
    path: Path | None = Field(None, description="Lake root; default <data_dir>/lake. May be shared storage.")
    batch_rows: int = Field(250_000, ge=1, description="Rows buffered per table before a Parquet file is written.")
    compression: str = Field("zstd", description="Parquet compression codec.")
    row_group_rows: int = Field(256 * 1024, ge=1024, description="Rows per Parquet row group.")


class ImportSettings(_Section):
    max_reasons: int = Field(5, ge=1, description="Distinct rejection reasons shown per import.")


class CollectSettings(_Section):
    netflow: list[str] = Field(default_factory=list, description="NetFlow v5/v9 and IPFIX listen addresses, HOST:PORT ([v6]:PORT).")
    sflow: list[str] = Field(default_factory=list, description="sFlow v5 listen addresses.")
    syslog: list[str] = Field(default_factory=list, description="Syslog listen addresses (UDP and TCP on the same port).")
    flush_seconds: float = Field(10.0, gt=0, description="Longest time a received record waits before it is written to the lake.")
    max_buffered_rows: int = Field(2_000_000, ge=1_000, description="Decoded rows held in memory for the lake at most (about 150 bytes each); above it reception pauses until the writer catches up, and the kernel's drops are counted (kernel_drops).")
    template_wait_seconds: float = Field(30.0, ge=0, description="How long NetFlow v9/IPFIX data sets wait for their template before being dropped.")
    max_pending_datagrams: int = Field(10_000, ge=0, description="Datagrams buffered per exporter while waiting for templates.")
    stats_file: Path | None = Field(None, description="Status file with per-exporter counters; default <data_dir>/collect-stats.json.")
    metrics_port: int | None = Field(None, description="Port for Prometheus text metrics over HTTP on 127.0.0.1; off when unset.")


class EnrichSettings(_Section):
    geoip_city: Path | None = Field(None, description="MaxMind GeoIP2/GeoLite2 City mmdb file.")
    geoip_asn: Path | None = Field(None, description="MaxMind GeoIP2/GeoLite2 ASN mmdb file.")
    public_suffix_list: Path = Field(Path("/usr/share/publicsuffix/public_suffix_list.dat"), description="Public suffix list (offline).")


class ExchangeSettings(_Section):
    database_url: str | None = Field(None, description="SQLAlchemy URL of the exchange store; default sqlite under <data_dir>/exchange.sqlite. PostgreSQL: postgresql+psycopg://user:pw@host/db.")
    org_name: str = Field("necoma", description="Name of this organization (its STIX identity and default owner of objects).")
    public_url: str = Field("http://127.0.0.1:8080", description="Base URL under which `necoma serve` is reached; used in links it emits.")
    rate_per_second: float = Field(50.0, gt=0, description="Requests per second allowed per API key (token bucket refill rate).")
    rate_burst: int = Field(200, ge=1, description="Requests an API key may make in a burst before being limited (bucket size).")
    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest request body accepted; bigger ones get 413.")
    page_limit: int = Field(1000, ge=1, description="Most objects returned in one TAXII page; a client's `limit` is capped to this.")


class AnalyzeSettings(_Section):
    engine: str = Field("duckdb", pattern="^(duckdb|spark)$", description="Query engine for detectors: duckdb (embedded) or spark.")
    spark_master: str = Field("local[2]", description="Spark master URL: local[N], spark://HOST:7077, yarn, k8s://...")
    spark_conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings (spark.executor.memory, spark.hadoop.fs.s3a.*, ...).")
    lake_url: str | None = Field(None, description="Lake location as the engines read it (path or URL: file://, hdfs://, s3a://), e.g. shared storage mounted elsewhere; it must exist. Default the lake path. Alerts are still stored under the lake path.")
    write_alerts: bool = Field(True, description="Store alerts in the lake's alerts table.")


class ProtectSettings(_Section):
    """Decide and protect (docs/protect.md). Playbooks and policies have documented built-in defaults
    (necoma.protect.playbooks / necoma.protect.policies); entries here override or extend them by name."""

    enforce: bool = Field(False, description="Apply on the configured enforcement points. Off: every action goes to the dry-run driver, and necoma says so.")
    points: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Enforcement points, [protect.points.NAME] with a `driver` key (dryrun, nftables, gobgp, exabgp, rpz, abuse, notify) and driver options. None configured: one point `dryrun`.")
    routes: dict[str, str] = Field(default_factory=dict, description="Action kind -> point name used when a playbook step names no point (e.g. drop = \"edge\", block_domain = \"resolvers\").")
    allow_list: list[str] = Field(default_factory=list, description="IPv4/IPv6 prefixes and domain names that may never be blocked (overlap counts, not only equality).")
    infrastructure: list[str] = Field(default_factory=list, description="Own resolvers, routers, servers: never blocked, like the allow list.")
    own_prefixes: list[str] = Field(default_factory=list, description="Prefixes this organization announces; policies may auto-apply rules protecting them.")
    max_prefix_v4: int = Field(24, ge=0, le=32, description="Widest IPv4 prefix a rule may name without a person (shorter prefixes need one).")
    max_prefix_v6: int = Field(48, ge=0, le=128, description="Widest IPv6 prefix a rule may name without a person.")
    max_rules_per_point: int = Field(500, ge=1, description="Most actions applied at one enforcement point at the same time.")
    default_ttl_seconds: int = Field(3600, gt=0, description="TTL of an action whose playbook step names none.")
    max_ttl_seconds: int = Field(7 * 86400, gt=0, description="Longest TTL; longer ones are capped to it.")
    preview_hours: float = Field(24.0, gt=0, description="How far back the blast-radius preview looks, ending at the newest data in the lake.")
    preview_max_flows: int = Field(100, ge=0, description="Auto-apply is refused when the rule would have matched more legitimate-looking flows than this.")
    preview_max_bytes: int = Field(50_000_000, ge=0, description="... or more legitimate-looking bytes (scaled by sampling) than this.")
    preview_max_hosts: int = Field(5, ge=0, description="... or more distinct hosts (either side) than this.")
    preview_max_queries: int = Field(50, ge=0, description="... or, for domain blocks, more legitimate-looking DNS queries than this.")
    preview_max_clients: int = Field(5, ge=0, description="... or more distinct DNS clients than this.")
    playbooks: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Playbook overrides and additions by name, [protect.playbooks.NAME] (see `necoma actions playbooks`); enabled = false turns a built-in off.")
    policies: list[dict[str, Any]] | None = Field(None, description="Ordered policies, [[protect.policies]]; the first that matches decides. Unset: the built-in ones (see `necoma actions playbooks`).")
    state_db: Path | None = Field(None, description="SQLite file of actions and their audit log; default <data_dir>/protect.sqlite.")


class Settings(_Section):
    data_dir: Path = Field(Path("necoma-data"), description="Where necoma keeps its lake and state.")
    lake: LakeSettings = Field(default_factory=LakeSettings)
    imports: ImportSettings = Field(default_factory=ImportSettings)
    collect: CollectSettings = Field(default_factory=CollectSettings)
    enrich: EnrichSettings = Field(default_factory=EnrichSettings)
    analyze: AnalyzeSettings = Field(default_factory=AnalyzeSettings)
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per-detector parameter overrides, [detectors.NAME] (see necoma analyze --list).")
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    protect: ProtectSettings = Field(default_factory=ProtectSettings)

    @property
    def lake_path(self) -> Path:
        return self.lake.path or self.data_dir / "lake"

    @property
    def exchange_db_url(self) -> str:
        return self.exchange.database_url or f"sqlite:///{(self.data_dir / 'exchange.sqlite').resolve()}"

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.sqlite"


class ConfigError(Exception):
    """The configuration file is missing or invalid; the message says where."""


def config_path(explicit: str | os.PathLike | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("NECOMA_CONFIG")
    if env:
        return Path(env)
    default = Path("necoma.toml")
    return default if default.exists() else None


def load_settings(explicit: str | os.PathLike | None = None) -> Settings:
    path = config_path(explicit)
    if path is None:
        return Settings()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: invalid settings:"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def describe(settings: BaseModel, prefix: str = "") -> list[tuple[str, Any, str]]:
    """Flatten settings into (dotted name, value, description) rows."""
    rows: list[tuple[str, Any, str]] = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            rows.extend(describe(value, key + "."))
        else:
            rows.append((key, value, field.description or ""))
    return rows
