"""SMS templates: a kind (verification / notification / marketing), a signature and a body with ``${name}``
variables. A template is screened when it is created (its variables filled with neutral samples) and
can be used only once approved: ``pass`` approves it at once, ``review`` waits for a reviewer (review
source ``template``, ref = template id), ``block`` refuses it for good.

Variable VALUES are screened at send time, inside each distinct rendered content (``_submit``). A link
or a contact inside a variable is flagged (``variable.link`` / ``variable.contact``, at least review)
even where the same link in the approved template text would pass: variables are where unregistered
links and private-contact diversions get smuggled in.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, insert, select, update

from smsguard import audit, review, webhooks
from smsguard.core import ConflictError, NotFoundError
from smsguard.engine import Message, Policy, Reason, Verdict

from ._common import BatchError, Context, dumps, now, tenant_name
from ._tables import templates

VAR = re.compile(r"\$\{([^\W\d]\w{0,31})\}")  # ${name}, ${姓名}: a letter or _, then word characters
KINDS = ("verification", "notification", "marketing")
MAX_TEMPLATE_BODY = 5_000  # characters: far above any carrier's long-SMS limit
MAX_TEMPLATE_VARIABLES = 100
_RANK = {"pass": 0, "review": 1, "block": 2}


@dataclasses.dataclass(frozen=True)
class Template:
    """A compiled body: literal parts and variable slots, rendered with one ``str.join``."""

    signature: str
    body: str
    prefix: str
    parts: tuple[str, ...]
    slots: tuple[int, ...]  # parts[i] is a literal; between parts[i] and parts[i+1] sits variables[slots[i]]
    variables: tuple[str, ...]

    @classmethod
    def compile(cls, signature: str, body: str) -> Template:
        prefix = "" if f"【{signature}】" in body else f"【{signature}】"
        names: dict[str, int] = {}  # name -> slot; a dict, so many variables cost linear time, not quadratic
        parts: list[str] = []
        slots: list[int] = []
        pos = 0
        for m in VAR.finditer(body):
            parts.append(body[pos : m.start()])
            slots.append(names.setdefault(m.group(1), len(names)))
            pos = m.end()
        parts.append(body[pos:])
        parts[0] = prefix + parts[0]
        return cls(signature, body, prefix, tuple(parts), tuple(slots), tuple(names))

    def render(self, values: Sequence[str]) -> str:
        """The message text; ``values`` in ``variables`` order."""
        if not self.slots:
            return self.parts[0]
        out = [self.parts[0]]
        for i, slot in enumerate(self.slots):
            out.append(values[slot])
            out.append(self.parts[i + 1])
        return "".join(out)

    def spans(self, values: Sequence[str]) -> list[tuple[int, int, str]]:
        """Where each variable value sits in the rendered text: ``(start, end, name)``."""
        spans = []
        pos = len(self.parts[0])
        for i, slot in enumerate(self.slots):
            spans.append((pos, pos + len(values[slot]), self.variables[slot]))
            pos += len(values[slot]) + len(self.parts[i + 1])
        return spans


_SCHEME_OR_WWW = re.compile(r"(?i)(?:https?://|www\.)")
_LONG_DIGITS = re.compile(r"\d{7,}")


def variable_reasons(policy: Policy, text: str, spans: Sequence[Sequence[Any]], verdict: Verdict) -> list[Reason]:
    """Reasons for links and contacts inside variable values (at least ``review``)."""
    out: list[Reason] = []
    seen: set[tuple[str, int]] = set()

    def add(code: str, start: int, end: int, action: str, what: str) -> None:
        if (code, start) in seen:
            return
        seen.add((code, start))
        out.append(
            Reason(
                code=code,
                category="link" if code == "variable.link" else "contact",
                severity="medium",
                source="rule",
                action=action,
                message=what,
                term=text[start:end],
                start=start,
                end=end,
            )
        )

    tlds = "|".join(re.escape(t) for t in sorted(policy.links.tlds, key=len, reverse=True)) or "com|cn"
    domain = re.compile(rf"(?i)[a-z0-9][a-z0-9-]*\.(?:{tlds})(?![a-z])")
    cues = [c for c in (*policy.contacts.wechat_cues, *policy.contacts.qq_cues) if len(c) >= 2]
    for start, end, name in spans:
        value = text[start:end]
        for r in verdict.reasons:  # what the engine found inside the value
            if r.start is not None and r.start < end and (r.end or r.start) > start:
                if r.code.startswith("link."):
                    add(
                        "variable.link",
                        start,
                        end,
                        max(r.action, "review", key=_RANK.__getitem__),
                        f"link inside variable {name} ({r.code})",
                    )
                elif r.code.startswith("contact."):
                    add(
                        "variable.contact",
                        start,
                        end,
                        max(r.action, "review", key=_RANK.__getitem__),
                        f"contact inside variable {name} ({r.code})",
                    )
        if _SCHEME_OR_WWW.search(value) or domain.search(value):
            add("variable.link", start, end, "review", f"link inside variable {name}")
        low = value.lower()
        if _LONG_DIGITS.search(value) or any(c in low for c in cues) or "@" in value:
            add(
                "variable.contact", start, end, "review", f"contact (number, WeChat/QQ id or e-mail) in variable {name}"
            )
    return out


def strictest(verdict: Verdict, extra: list[Reason]) -> str:
    decision = verdict.decision
    for r in extra:
        if _RANK[r.action] > _RANK[decision]:
            decision = r.action
    return decision


# -- the template store ----------------------------------------------------------------------------------


def _sample_values(kind: str, names: Sequence[str], samples: Mapping[str, str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        if name in samples:
            out.append(samples[name])
        elif kind == "verification" and (i == 0 or "code" in name.lower()):
            out.append("123456")  # the code slot: a well-formed code, so the form rule sees one
        else:
            out.append("某某")
    return out


def create_template(
    ctx: Context,
    tenant_id: int,
    *,
    name: str,
    kind: str,
    signature: str,
    body: str,
    samples: Mapping[str, str] | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Store and screen a template; returns it (status approved, review or blocked)."""
    if kind not in KINDS:
        raise BatchError(f"kind must be one of {', '.join(KINDS)}", where="$.kind", code="template.kind")
    sig = signature.strip().strip("【】")
    p = ctx.policy.screening.signature
    if not p.min_len <= len(sig) <= p.max_len:
        raise BatchError(
            f"signature must be {p.min_len}-{p.max_len} characters", where="$.signature", code="template.signature"
        )
    if not body.strip():
        raise BatchError("body must not be empty", where="$.body", code="template.body")
    # Limits checked before anything is compiled or screened: an SMS template is short, and a huge one would
    # only cost screening time (issue 15: 10,000 variables took 13 s).
    if len(body) > MAX_TEMPLATE_BODY:
        raise BatchError(f"body is {len(body):,} characters, over the limit of {MAX_TEMPLATE_BODY:,}",
                         where="$.body", code="template.too_long")
    if body.count("${") > MAX_TEMPLATE_VARIABLES:
        raise BatchError(f"at most {MAX_TEMPLATE_VARIABLES} variables per template", where="$.body",
                         code="template.too_many_variables")
    if "${" in VAR.sub("", body):
        raise BatchError(
            "variables are ${name}: a letter or _, then letters, digits or _ (at most 32)",
            where="$.body",
            code="template.variable",
        )
    tpl = Template.compile(sig, body)
    engine = ctx.require_engine()
    with ctx.db.connect() as conn:
        tname = tenant_name(conn, tenant_id)
    values = _sample_values(kind, tpl.variables, samples or {})
    text = tpl.render(values)
    [verdict] = engine.screen_many([Message(text=text, kind=kind, signature=sig, tenant=tname)])  # type: ignore[arg-type]
    decision = verdict.decision
    status = {"pass": "approved", "review": "review", "block": "blocked"}[decision]
    vdict = msgspec.to_builtins(verdict)
    at = now()
    with ctx.db.begin() as conn:
        tid = conn.execute(
            insert(templates)
            .values(
                tenant_id=tenant_id,
                name=name[:100],
                kind=kind,
                signature=sig,
                body=body,
                variables=dumps(list(tpl.variables)),
                status=status,
                verdict=dumps(vdict),
                reason=_reason_text(verdict) if decision != "pass" else None,
                created_at=at,
                decided_at=None if status == "review" else at,
            )
            .returning(templates.c.id)
        ).scalar_one()
        if status == "review":
            review.submit(
                conn,
                tenant_id=tenant_id,
                source="template",
                source_ref=str(tid),
                text=text,
                verdict=vdict,
                priority=0,
                batch_size=0,
                sample_recipients=[],
            )
        audit.append(
            conn,
            event_type="template.screened",
            actor=actor or ctx.actor,
            tenant_id=tenant_id,
            subject=f"template:{tid}",
            payload={
                "decision": decision,
                "status": status,
                "kind": kind,
                "signature": sig,
                "reasons": [r.code for r in verdict.reasons],
                "versions": vdict["versions"],
            },
        )
    return get_template(ctx, tenant_id, tid)


def _reason_text(v: Verdict) -> str:
    return "; ".join(
        f"{r.code}: {r.message}" + (f" ({r.term})" if r.term else "") for r in v.reasons if r.action == v.decision
    )[:2000]


def get_template(ctx: Context, tenant_id: int, template_id: int, conn: Connection | None = None) -> dict[str, Any]:
    def read(c: Connection) -> Any:
        return c.execute(
            select(templates).where(templates.c.id == template_id, templates.c.tenant_id == tenant_id)
        ).one_or_none()

    if conn is not None:
        row = read(conn)
    else:
        with ctx.db.connect() as c:
            row = read(c)
    if row is None:
        raise NotFoundError(f"no template {template_id}", where="path template_id", code="template.not_found")
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "signature": row.signature,
        "body": row.body,
        "variables": json.loads(row.variables),
        "status": row.status,
        "reason": row.reason,
        "verdict": json.loads(row.verdict) if row.verdict else None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }


def usable_template(conn: Connection, tenant_id: int, template_id: int) -> Any:
    row = conn.execute(
        select(templates).where(templates.c.id == template_id, templates.c.tenant_id == tenant_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no template {template_id}", where="$.template_id", code="template.not_found")
    if row.status != "approved":
        what = "is waiting for review" if row.status == "review" else f"is {row.status}"
        raise ConflictError(
            f"template {template_id} {what}; only approved templates can be sent",
            where="$.template_id",
            code="template.not_approved",
        )
    return row


def on_template_decision(conn: Connection, decision: Any) -> None:
    """Review handler (source ``template``): approve or reject the template, in the decision's transaction."""
    tid = int(decision.source_ref)
    status = "approved" if decision.approved else "rejected"
    row = conn.execute(select(templates.c.tenant_id, templates.c.status).where(templates.c.id == tid)).one_or_none()
    if row is None or row.status != "review":
        return  # a repeat, or decided already: nothing to do
    conn.execute(
        update(templates).where(templates.c.id == tid).values(status=status, reason=decision.reason, decided_at=now())
    )
    actor = f"user:{decision.deciders[-1]}" if getattr(decision, "deciders", None) else "system:review"
    audit.append(
        conn,
        event_type="template.decided",
        actor=actor,
        tenant_id=row.tenant_id,
        subject=f"template:{tid}",
        payload={"status": status, "reason": decision.reason},
    )
    webhooks.emit(conn, tenant_id=row.tenant_id, event_type="template.status", subject=f"template:{tid}",
                  payload={"template_id": tid, "status": status, "reason": decision.reason})
