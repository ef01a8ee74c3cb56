// smsguard customer console: progressive enhancement only; every page works with plain forms.
//
// * compose: an instant character/segment count computed here, then the server's preview
//   (POST /console/api/estimate: the engine's length/segments/verdict, policy prices, quiet hours),
//   which replaces the local numbers: the server is the truth.
// * templates: "Check" shows the verdict (reasons highlighted by the server) before saving.
// * batch page: live progress over server-sent events (polling if EventSource fails), chart in inline SVG.
"use strict";

(function () {
  // The page's language: its messages as the server embedded them (i18n/switch.html); English ids show as they are.
  const MESSAGES = (() => {
    try { return JSON.parse((document.getElementById("i18n-messages") || {}).textContent || "{}"); } catch (e) { return {}; }
  })();
  function _(msg, values) {
    const text = MESSAGES[msg] || msg;
    return values ? text.replace(/%\((\w+)\)s/g, (m, k) => String(values[k])) : text;
  }
  const DECISIONS = { pass: _("pass"), review: _("review"), block: _("block"), reject: _("reject") };

  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Called before a 401 sends the browser to the log-in page (the compose page keeps its draft there).
  let beforeLogin = () => {};

  async function postJSON(url, body) {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (res.status === 401) {
      beforeLogin();
      window.location = "/console/login?next=" + encodeURIComponent(location.pathname);
      throw new Error("logged out");
    }
    return res.json();
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The verdict box, from a server answer whose `html` is the server-escaped highlighted text.
  function verdictBox(v, html) {
    const box = el("div", { class: "verdict decision-" + v.decision, id: "verdict" });
    const p = el("p");
    p.append(el("span", { class: "decision badge-" + v.decision, "data-decision": v.decision },
      DECISIONS[v.decision] || v.decision), " ",
      el("span", { class: "muted" }, _("%(chars)s characters · %(segments)s segment(s)",
        { chars: v.length, segments: v.segments })));
    box.append(p);
    const text = el("p", { class: "original", "data-role": "highlighted" });
    text.innerHTML = html; // produced by console/_highlight.py: every piece of the message is escaped there
    box.append(text);
    // a "pass" reason (the classifier's advert score on declared marketing) is a note, not a violation
    const reasons = (v.reasons || []).filter((r) => r.action !== "pass");
    const notes = (v.reasons || []).filter((r) => r.action === "pass");
    if (reasons.length) {
      const ul = el("ul", { class: "reasons" });
      for (const r of reasons) {
        const li = el("li", { class: `reason act-${r.action} sev-${r.severity}`, "data-code": r.code });
        li.append(el("b", {}, DECISIONS[r.action] || r.action), " ", el("code", {}, r.code), " " + (r.message || ""));
        if (r.term) li.append(" — ", el("q", {}, r.term));
        ul.append(li);
      }
      box.append(ul);
    } else {
      box.append(el("p", { class: "muted" }, _("no reasons: nothing in this text needs attention")));
    }
    if (notes.length) {
      const ul = el("ul", { class: "notes" });
      for (const r of notes) {
        const li = el("li", { class: "reason note", "data-code": r.code, "data-action": "pass" });
        li.append(el("b", {}, _("note")), " " + (r.message || ""));
        ul.append(li);
      }
      box.append(ul);
    }
    return box;
  }

  // Destructive forms ask first: a [data-confirm] button opens its <dialog>, whose own form posts confirm=yes.
  function confirmations() {
    for (const btn of document.querySelectorAll("[data-confirm]")) {
      const dialog = document.getElementById(btn.dataset.confirm);
      if (!dialog || !dialog.showModal) continue;
      btn.addEventListener("click", (ev) => {
        ev.preventDefault();
        dialog.showModal();
        const keep = dialog.querySelector('[formmethod="dialog"]');
        if (keep) keep.focus(); // the safe choice has the focus: Enter keeps the batch
      });
    }
  }

  function debounce(fn, ms) {
    let t = null;
    return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  }

  // ---- compose ------------------------------------------------------------------------------
  const GSM7 = new Set(("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ" +
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà").split(""));

  const LABELS = { mode: _("Mode"), name: _("Batch name"), template_id: _("Template"), list_id: _("Contact list"),
    kind: _("Kind"), signature: _("Signature"), content: _("Message"), numbers: _("Numbers"), schedule_at: _("Send at") };

  function compose() {
    const form = document.getElementById("compose-form");
    if (!form) return;
    const limits = {
      single: +form.dataset.single, segment: +form.dataset.segment,
      gsm7Single: +form.dataset.gsm7Single, gsm7Segment: +form.dataset.gsm7Segment,
    };
    const $ = (id) => document.getElementById(id);
    let seq = 0;

    function mode() { return form.querySelector('input[name="mode"]:checked').value; }

    function showMode() {
      const m = mode();
      form.querySelector(".mode-template").hidden = m !== "template";
      form.querySelector(".mode-adhoc").hidden = m === "template";
    }

    // Instant feedback while typing; replaced by the server's numbers a moment later.
    function localCount() {
      if (mode() !== "adhoc") return;
      const sig = $("signature").value.trim().replace(/^【|】$/g, "");
      const content = $("content").value.trim();
      const full = content.startsWith("【") || !sig ? content : `【${sig}】${content}`;
      const chars = Array.from(full).length;
      const gsm = Array.from(full).every((c) => GSM7.has(c));
      const [one, part] = gsm ? [limits.gsm7Single, limits.gsm7Segment] : [limits.single, limits.segment];
      $("chars").textContent = chars;
      $("segments").textContent = chars === 0 ? 0 : chars <= one ? 1 : Math.ceil(chars / part);
      $("encoding").textContent = gsm ? "GSM-7" : "UCS-2";
      $("counter-source").textContent = _("(typing…)");
    }

    async function refresh() {
      const n = ++seq;
      const body = {};
      for (const [k, v] of new FormData(form).entries()) if (k !== "_csrf_token") body[k] = v;
      let r;
      try { r = await postJSON("/console/api/estimate", body); } catch (e) { return; }
      if (n !== seq) return; // a newer request is on its way
      const out = $("preview-body");
      out.replaceChildren();
      // each error once, by its field, under the field's name; an untouched numbers box is not an error yet
      const errs = Object.entries(r.errors || {}).filter(([k]) => k !== "numbers" || body.numbers);
      showErrors(errs);
      if (r.verdict && (!errs.length || r.verdict.decision !== "pass")) out.append(verdictBox(r.verdict, r.html));
      if (r.rejected_count) {
        out.append(el("p", { class: "error", id: "rejected-numbers" }, _("%(n)s number(s) rejected:", { n: r.rejected_count }) + " " +
          r.rejected.slice(0, 5).map((x) => `#${x.n} ${x.value} (${x.reason})`).join("; ")));
      }
      if (errs.length) {
        out.append(el("p", { class: "muted", id: "preview-pending" }, _("fix the form's errors to see the cost")));
        counter(r);
        return;
      }
      const dl = el("dl", { class: "facts", id: "estimate" });
      const facts = [
        [_("recipients"), r.recipients, "est-recipients"],
        [_("segments"), r.segments + (r.contents_sampled > 1 ? " " + _("(avg %(n)s)", { n: r.segments_avg }) : ""),
          "est-segments"],
        [_("cost"), `${r.cost} ${r.currency}` + (r.approximate ? " " + _("(estimated from a sample)") : ""), "est-cost"],
      ];
      for (const c of r.carriers || []) facts.push([c.label, `${c.count} × ${c.price}`, "est-" + c.carrier]);
      if (r.schedule_local) facts.push([_("send at"), `${r.schedule_local} (${r.time_zone})`, "est-when"]);
      for (const [k, v, id] of facts) dl.append(el("dt", {}, k), el("dd", { id }, String(v)));
      out.append(dl);
      if (r.quiet) out.append(el("p", { class: "warning", id: "quiet-warning" }, r.quiet.message));
      counter(r);
    }

    function counter(r) {
      if (mode() === "adhoc" && r.length !== undefined) {
        $("chars").textContent = r.length;
        $("segments").textContent = r.segments;
        $("encoding").textContent = r.encoding;
        $("counter-source").textContent = _("(checked by the server)");
      }
      const submit = $("submit");
      if (submit) submit.classList.toggle("blocked", r.decision === "block");
    }

    function showErrors(errs) {
      const shown = new Map(errs);
      for (const slot of form.querySelectorAll(".field-error")) {
        const m = shown.get(slot.dataset.field);
        slot.hidden = !m;
        slot.textContent = m ? `${LABELS[slot.dataset.field] || slot.dataset.field}: ${m}` : "";
      }
    }

    // ---- the draft: saved for this user as it is edited, restored after a re-login ----------------------
    const who = document.body.dataset.user || "";
    const PENDING = "smsguard.console.draft";
    function formBody() {
      const body = {};
      for (const [k, v] of new FormData(form).entries()) if (k !== "_csrf_token" && k !== "action") body[k] = v;
      return body;
    }
    async function saveDraft() {
      if (!$("submit")) return; // a viewer cannot send: nothing to keep
      const r = await postJSON("/console/api/draft", formBody());
      if (r.saved_local) $("draft-status").textContent = _("draft saved %(at)s", { at: r.saved_local });
    }
    // the session ended: keep the last edits in this tab until the user is back (same user only)
    beforeLogin = () => {
      try { sessionStorage.setItem(PENDING, JSON.stringify({ user: who, form: formBody() })); } catch (e) { /* full */ }
    };
    function restorePending() {
      let pending = null;
      try { pending = JSON.parse(sessionStorage.getItem(PENDING) || "null"); } catch (e) { pending = null; }
      sessionStorage.removeItem(PENDING);
      if (!pending || pending.user !== who) return false;
      for (const [k, v] of Object.entries(pending.form)) {
        const fields = form.querySelectorAll(`[name="${CSS.escape(k)}"]`);
        for (const f of fields) {
          if (f.type === "radio") f.checked = f.value === v; else f.value = v;
        }
      }
      return true;
    }

    const later = debounce(refresh, 350);
    const keep = debounce(() => saveDraft().catch(() => {}), 600);
    form.addEventListener("input", () => {
      localCount();
      later();
      keep();
    });
    form.addEventListener("change", () => { showMode(); localCount(); later(); keep(); });
    const restored = restorePending();
    showMode();
    localCount();
    if (restored) { $("draft-status").textContent = _("draft restored"); saveDraft().catch(() => {}); }
    if ($("content").value || $("template_id").value) refresh();
  }

  // ---- templates ----------------------------------------------------------------------------
  function templates() {
    const btn = document.getElementById("t-check");
    if (!btn) return;
    const $ = (id) => document.getElementById(id);
    async function check() {
      const r = await postJSON("/console/api/template-preview",
        { kind: $("t-kind").value, signature: $("t-signature").value, body: $("t-body").value });
      const out = $("t-preview");
      out.replaceChildren();
      if (r.decision) out.append(verdictBox(r, r.html));
      else if (r.message) out.append(el("p", { class: "error" }, r.message));
    }
    btn.addEventListener("click", check);
    for (const id of ["t-kind", "t-signature", "t-body"]) $(id).addEventListener("input", debounce(check, 500));
  }

  // ---- batch: live progress and the chart ----------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function drawChart(p) {
    const chart = document.getElementById("chart");
    if (!chart) return;
    const W = 480, H = 220, L = 40, R = 10, T = 10, B = 30;
    chart.replaceChildren();
    const total = p.sendable || p.total_recipients || 0;
    const pts = (p.timeline && p.timeline.points) || [];
    chart.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "plot" }));
    for (const f of [0, 0.5, 1]) {
      const y = T + (H - T - B) * (1 - f);
      chart.append(svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid" }));
      chart.append(svg("text", { x: L - 4, y: y + 4, class: "axis", "text-anchor": "end" }, `${Math.round(f * 100)}%`));
    }
    if (!pts.length || !total) {
      chart.append(svg("text", { x: W / 2, y: H / 2, class: "axis", "text-anchor": "middle" }, _("nothing sent yet")));
      return;
    }
    const t0 = p.timeline.start, t1 = pts[pts.length - 1].t;
    const x = (t) => L + (W - L - R) * (t1 === t0 ? 1 : (t - t0) / (t1 - t0));
    const y = (n) => T + (H - T - B) * (1 - n / total);
    for (const key of ["submitted", "delivered", "failed"]) {
      const d = [`M${x(t0)},${y(0)}`].concat(pts.map((q) => `L${x(q.t)},${y(q[key])}`)).join(" ");
      chart.append(svg("path", { d, class: "line " + key, "data-series": key }));
    }
    const secs = t1 - t0;
    chart.append(svg("text", { x: L, y: H - 10, class: "axis" }, "0 s"));
    chart.append(svg("text", { x: W - R, y: H - 10, class: "axis", "text-anchor": "end" }, `${secs} s`));
    const last = pts[pts.length - 1];
    chart.setAttribute("data-delivered", last.delivered);
  }

  function render(p) {
    const $ = (id) => document.getElementById(id);
    $("state").textContent = p.label || p.state;
    $("state").className = "state state-" + p.state + (p.hold ? " state-held" : "");
    $("state").dataset.state = p.state;
    $("n-total").textContent = p.total_recipients;
    $("n-submitted").textContent = p.submitted;
    $("n-delivered").textContent = p.delivered;
    $("rate").textContent = p.delivery_rate === null ? "–" : (100 * p.delivery_rate).toFixed(1);
    $("done").value = p.done_pct;
    $("done").textContent = p.done_pct + "%";
    $("estimate").textContent = p.estimate;
    const counts = $("counts").tBodies[0];
    counts.replaceChildren();
    for (const [s, n] of Object.entries(p.counts)) {
      const tr = el("tr", { "data-status": s });
      tr.append(el("td", {}, (p.state_labels || {})[s] || s), el("td", { class: "num" }, String(n)));
      counts.append(tr);
    }
    const fails = $("failures").tBodies[0];
    fails.replaceChildren();
    for (const f of p.failures) {
      const tr = el("tr");
      const code = el("td");
      code.append(el("code", {}, f.carrier_code));
      tr.append(el("td", {}, (p.state_labels || {})[f.status] || f.status), code, el("td", { class: "num" }, String(f.count)));
      fails.append(tr);
    }
    if (!p.failures.length) {
      const tr = el("tr");
      tr.append(el("td", { colspan: "3", class: "muted" }, _("none")));
      fails.append(tr);
    }
    drawChart(p);
    const cancel = $("cancel");
    if (cancel) cancel.closest("form").hidden = !p.cancellable;
    document.getElementById("batch").dataset.final = p.final ? "true" : "false";
    $("live").textContent = p.final ? _("final") : _("live");
  }

  function batch() {
    const root = document.getElementById("batch");
    if (!root) return;
    const id = root.dataset.batch;
    const initial = JSON.parse(document.getElementById("progress-data").textContent);
    render(initial);
    if (initial.final) return;
    let polling = null;
    const poll = () => {
      if (polling) return;
      polling = setInterval(async () => {
        const res = await fetch(`/console/batches/${id}/progress`, { credentials: "same-origin" });
        if (!res.ok) return;
        const p = await res.json();
        render(p);
        if (p.final) clearInterval(polling);
      }, 2000);
    };
    if (!window.EventSource) { poll(); return; }
    let errors = 0;
    const es = new EventSource(`/console/batches/${id}/events`);
    es.addEventListener("progress", (ev) => { errors = 0; render(JSON.parse(ev.data)); });
    es.addEventListener("end", () => es.close());
    es.onerror = () => { if (++errors >= 3) { es.close(); poll(); } };
  }

  document.addEventListener("DOMContentLoaded", () => { confirmations(); compose(); templates(); batch(); });
})();
