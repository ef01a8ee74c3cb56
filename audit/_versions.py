"""The policy, lexicon and model of every version in force, kept content-addressed in SQL.

A verdict names its policy, lexicon and model versions; this store keeps the exact bytes behind each name
(``audit_blobs``, keyed by SHA-256) and which blob a version string names (``audit_versions``), written the
first time a version comes into force (``record_in_force`` at API start-up and after every reload). From
them ``materialize`` rebuilds that engine in a scratch directory, so ``smsguard audit replay`` can screen
a stored text again under exactly what decided it.

A lexicon is several directories of TSV files; its blob is one msgpack list of ``[directory index, file
name, bytes]`` in load order, which is all its version depends on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import msgspec
from sqlalchemy import Connection, insert, select
from sqlalchemy import Engine as Database
from sqlalchemy.exc import IntegrityError

from smsguard.engine import RULE_CODES, Engine, EngineConfig, Lexicon, SmsguardError, Versions, parse_policy

from ._tables import blobs, versions

log = logging.getLogger("smsguard.audit")
KINDS = ("policy", "lexicon", "model")


class VersionMissing(SmsguardError):
    code = "audit.version_missing"
    status_code = 404


def lexicon_files(config: EngineConfig) -> list[tuple[int, Path]]:
    """The files ``Lexicon.load`` reads for ``config``, in its order, with the index of their directory."""
    return [(i, f) for i, d in enumerate(config.lexicon_dirs) if d.is_dir() for f in sorted(d.glob("*.tsv"))]


def current_inputs(config: EngineConfig) -> dict[str, tuple[str, bytes]]:
    """``kind -> (version, bytes)`` of what ``config``'s files hold now (model absent without a file)."""
    raw_policy = config.policy_path.read_bytes()
    _, policy_version = parse_policy(raw_policy, name=config.policy_path.name, known_rules=frozenset(RULE_CODES))
    files = lexicon_files(config)
    bundle = [(i, f.name, f.read_bytes()) for i, f in files]
    out = {
        "policy": (policy_version, raw_policy),
        "lexicon": (Lexicon.from_files([f for _, f in files]).version, msgspec.msgpack.encode(bundle)),
    }
    if config.model_path is not None and config.model_path.exists():
        data = config.model_path.read_bytes()
        out["model"] = ("", data)  # the model's version needs onnxruntime metadata: checked by its hash suffix below
    return out


def _store(conn: Connection, kind: str, version: str, content: bytes) -> bool:
    digest = hashlib.sha256(content).hexdigest()
    if conn.execute(select(blobs.c.sha256).where(blobs.c.sha256 == digest)).first() is None:
        conn.execute(insert(blobs).values(sha256=digest, size=len(content), content=content))
    conn.execute(insert(versions).values(kind=kind, version=version, sha256=digest, first_seen=datetime.now(UTC)))
    return True


def record_in_force(db: Database, engine: Engine) -> list[str]:
    """Store the bytes of ``engine``'s versions that the store does not know yet; returns the kinds stored.

    The files are read again here, so each is checked against the version the engine reports: a file changed
    since it was loaded is logged and not recorded (a replay of that version will then say it is missing)."""
    v = engine.versions
    wanted = {"policy": v.policy, "lexicon": v.lexicon, "model": v.model}
    if v.model == "none":
        del wanted["model"]
    with db.connect() as conn:
        known = {(r.kind, r.version) for r in conn.execute(select(versions.c.kind, versions.c.version))}
    todo = {k: ver for k, ver in wanted.items() if (k, ver) not in known}
    if not todo:
        return []
    now = current_inputs(engine.config)
    stored = []
    for kind, version in todo.items():
        got = now.get(kind)
        if got is None:
            log.warning("audit: %s %s is in force but its file is gone: not recorded for replay", kind, version)
            continue
        file_version, content = got
        matches = (
            (version.rsplit("-", 1)[-1] == hashlib.sha256(content).hexdigest()[:8])
            if kind == "model"
            else file_version == version
        )
        if not matches:
            log.warning(
                "audit: the %s file changed since version %s was loaded: not recorded for replay", kind, version
            )
            continue
        try:
            with db.begin() as conn:
                _store(conn, kind, version, content)
            stored.append(kind)
        except IntegrityError:  # another process recorded it first: the same bytes, by construction
            pass
    return stored


def load_blob(db: Database, kind: str, version: str) -> bytes:
    with db.connect() as conn:
        row = conn.execute(
            select(blobs.c.content, blobs.c.sha256)
            .join(versions, versions.c.sha256 == blobs.c.sha256)
            .where(versions.c.kind == kind, versions.c.version == version)
        ).first()
    if row is None:
        raise VersionMissing(
            f"{kind} version {version} was never recorded (it came into force before the "
            "version store existed, or its file changed before it could be recorded)",
            where=f"{kind}:{version}",
        )
    content = bytes(row.content)
    if hashlib.sha256(content).hexdigest() != row.sha256:
        raise SmsguardError(
            f"the stored {kind} {version} does not match its hash", where=f"{kind}:{version}", code="audit.blob_corrupt"
        )
    return content


def _write_stored(db: Database, root: Path, kind: str, version: str) -> Path | tuple[Path, ...] | None:
    """Write the stored bytes of ``kind`` ``version`` under ``root``: the policy file, the lexicon directories
    (in load order) or the model file (None for no model)."""
    if kind == "policy":
        path = root / "policy.yaml"
        path.write_bytes(load_blob(db, "policy", version))
        return path
    if kind == "lexicon":
        bundle = msgspec.msgpack.decode(load_blob(db, "lexicon", version), type=list[tuple[int, str, bytes]])
        for i, name, content in bundle:
            d = root / "lexicons" / str(i)
            d.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(content)
        return tuple(root / "lexicons" / str(i) for i in sorted({i for i, _, _ in bundle}))
    if version == "none":
        return None
    path = root / "model.onnx"
    path.write_bytes(load_blob(db, "model", version))
    return path


def materialize(db: Database, want: Versions, matcher: str | None = None) -> Engine:
    """An engine built from the stored bytes of ``want`` (its versions are checked to be exactly these). The
    scratch files are gone when it returns: the engine holds what it read in memory."""
    with TemporaryDirectory(prefix="smsguard-replay-") as tmp:
        root = Path(tmp)
        policy = _write_stored(db, root, "policy", want.policy)
        lexicons = _write_stored(db, root, "lexicon", want.lexicon)
        model = _write_stored(db, root, "model", want.model)
        kwargs = {} if matcher is None else {"matcher": matcher}
        engine = Engine(
            EngineConfig(
                policy_path=policy,
                lexicon_dirs=lexicons,
                model_path=model,  # type: ignore[arg-type]
                **kwargs,
            )
        )
    got = engine.versions
    if got != want:
        raise SmsguardError(f"the stored inputs rebuild versions {got}, not {want}", code="audit.version_mismatch")
    return engine


def reload_candidate(db: Database, engine: Engine, what: Sequence[str]) -> Engine:
    """The engine ``engine.reload(*what)`` would build: the parts in ``what`` (all when empty) from the files
    as they are now, the others exactly as in force, from their stored bytes. A part in force that was never
    recorded is taken from its file instead (logged): then the candidate may differ in more than ``what``."""
    parts = set(what) or set(KINDS)
    config = engine.config
    if parts >= set(KINDS):
        return Engine(config)
    v = engine.versions
    fields = {"policy": "policy_path", "lexicon": "lexicon_dirs", "model": "model_path"}
    with TemporaryDirectory(prefix="smsguard-candidate-") as tmp:
        root = Path(tmp)
        changes: dict[str, object] = {}
        for kind in KINDS:
            if kind in parts:
                continue
            try:
                changes[fields[kind]] = _write_stored(db, root, kind, getattr(v, kind))
            except VersionMissing:
                log.warning(
                    "reload gate: %s %s in force was never recorded; the candidate reads its file",
                    kind,
                    getattr(v, kind),
                )
        return Engine(dataclasses.replace(config, **changes))  # type: ignore[arg-type]
