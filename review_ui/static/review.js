// Keyboard shortcuts and the lease timer. Everything also works without JavaScript (plain forms).
(function () {
  "use strict";
  // The page's language: its messages as the server embedded them (i18n/switch.html); English ids show as they are.
  const MESSAGES = (() => {
    try { return JSON.parse((document.getElementById("i18n-messages") || {}).textContent || "{}"); } catch (e) { return {}; }
  })();
  function _(msg, values) {
    const text = MESSAGES[msg] || msg;
    return values ? text.replace(/%\((\w+)\)s/g, (m, k) => String(values[k])) : text;
  }
  const page = document.body.dataset.page;
  const help = document.getElementById("help");
  let returnFocus = null;
  // The help is a modal dialog: focus moves into it when it opens and back where it was when it closes.
  const toggleHelp = (show) => {
    const open = show === undefined ? help.hidden : show;
    if (open === !help.hidden) return;
    if (open) { returnFocus = document.activeElement; help.hidden = false; help.focus(); }
    else { help.hidden = true; if (returnFocus && returnFocus.focus) returnFocus.focus(); }
  };
  document.querySelectorAll("[data-help]").forEach((b) => b.addEventListener("click", () => toggleHelp()));
  document.querySelectorAll("[data-help-close]").forEach((b) => b.addEventListener("click", () => toggleHelp(false)));
  help.addEventListener("keydown", (e) => { if (e.key === "Tab") { e.preventDefault(); help.focus(); } });

  const typing = (e) => {
    const t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  };

  // -- queue page: j/k move the selection, Enter opens, n claims the next item ------------------------
  let rows = Array.from(document.querySelectorAll("table.queue tr[data-href]"));
  let current = -1;
  const select = (i) => {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, j) => r.classList.toggle("selected", j === current));
    rows[current].scrollIntoView({ block: "nearest" });
  };
  rows.forEach((r, i) => r.addEventListener("dblclick", () => { window.location = r.dataset.href; }));
  // bulk selection: x toggles the selected row, the header box selects every row shown
  const picks = Array.from(document.querySelectorAll("input.pick"));
  const counter = document.getElementById("selected-count");
  const recount = () => {
    if (!counter) return;
    const n = picks.filter((p) => p.checked).length;
    counter.textContent = n ? _("%(n)s selected", { n }) : _("select rows (x) to decide them together");
  };
  picks.forEach((p) => p.addEventListener("change", recount));
  const all = document.getElementById("select-all");
  if (all) all.addEventListener("change", () => { picks.forEach((p) => { p.checked = all.checked; }); recount(); });
  const bulkForm = document.getElementById("bulk-form");
  if (bulkForm) bulkForm.addEventListener("submit", (e) => {
    const n = picks.filter((p) => p.checked).length;
    if (!n) { e.preventDefault(); counter.textContent = _("select at least one row first"); return; }
    if (e.submitter && e.submitter.value === "reject" && !document.getElementById("bulk-reason").value) {
      e.preventDefault(); counter.textContent = _("choose the reason for the rejection"); document.getElementById("bulk-reason").focus(); return;
    }
    const action = e.submitter ? e.submitter.textContent.trim() : _("Decide");
    if (!window.confirm(_("%(action)s: %(n)s item(s)?", { action, n }))) e.preventDefault();
  });

  // -- queue page stays live: counters refresh every 10 s; changed rows are announced, not swapped under the cursor
  const summaryBox = document.querySelector("[data-summary]");
  if (summaryBox) {
    const live = document.getElementById("live");
    const shown = summaryBox.dataset.ids;
    const set = (id, v) => { const el = document.getElementById(id); if (el) el.textContent = v; };
    const poll = async () => {
      try {
        const r = await fetch(summaryBox.dataset.summary, { headers: { accept: "application/json" } });
        if (!r.ok) return;
        const q = await r.json();
        set("count-total", q.total); set("count-breached", q.breached); set("count-near", q.near);
        set("count-pending", q.counts.pending); set("count-escalated", q.counts.escalated); set("count-second", q.counts.second);
        if (q.ids.join(",") !== shown) {
          live.hidden = false;
          live.innerHTML = "";
          const a = document.createElement("a");
          a.href = window.location.href; a.textContent = _("the queue changed: reload it");
          live.appendChild(a);
        }
      } catch (e) { /* offline for a moment: try again next turn */ }
    };
    setInterval(poll, 10000);
  }

  // -- item page: j/k step through the highlighted hits; a/r/e decide ---------------------------------
  const hits = Array.from(document.querySelectorAll("mark.hit"));
  let hit = -1;
  const focusHit = (i) => {
    if (!hits.length) return;
    hit = (i + hits.length) % hits.length;
    hits.forEach((h, j) => h.classList.toggle("focus", j === hit));
    document.querySelectorAll("#reasons li").forEach((li) => li.classList.remove("focus"));
    (hits[hit].dataset.reasons || "").split(" ").forEach((n) => {
      const li = document.querySelector(`#reasons li[data-reason="${n}"]`);
      if (li) li.classList.add("focus");
    });
  };
  const form = document.getElementById("decide");
  const reasonCode = document.getElementById("reason-code");
  const hasReason = () => (reasonCode && reasonCode.value) || document.getElementById("reason").value.trim();
  const askReason = () => {
    const target = reasonCode || document.getElementById("reason");
    target.focus();
    document.getElementById("reason").placeholder = "why? (Enter rejects)";
  };
  let submitting = false;
  const submit = (action) => {
    if (!form) return;
    const button = form.querySelector(`button[value="${action}"]`);
    if (!button || button.disabled) return;
    if (action === "reject" && !hasReason()) { askReason(); return; }
    form.requestSubmit(button);
  };
  if (form) {
    // A mouse click on Reject without a reason asks for one here instead of posting a refused decision.
    form.addEventListener("submit", (e) => {
      if (e.submitter && e.submitter.value === "reject" && !hasReason()) { e.preventDefault(); askReason(); return; }
      submitting = true;
    });
  }
  if (reasonCode) {
    reasonCode.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && reasonCode.value) { e.preventDefault(); form.requestSubmit(document.getElementById("reject")); }
      if (e.key === "Escape") reasonCode.blur();
    });
  }
  const reason = document.getElementById("reason");
  if (reason) {
    reason.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); if (hasReason()) form.requestSubmit(document.getElementById("reject")); }
      if (e.key === "Escape") reason.blur();
    });
  }

  // -- undo: the last decision stays pending release for the policy's window; u (or the button) takes it back
  const undoForm = document.getElementById("undo-form");
  const undoButton = document.getElementById("undo");
  const undoStatus = document.getElementById("undo-status");
  let undoTimer = null;
  const undoClosed = (message) => {
    clearInterval(undoTimer);
    undoButton.disabled = true;
    undoForm.classList.add("closed");
    undoStatus.textContent = message;
  };
  if (undoForm) {
    const until = Date.parse(undoForm.dataset.until);
    const leftEl = document.getElementById("undo-left");
    const tick = () => {
      const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      leftEl.textContent = s;
      if (s === 0) undoClosed(_("released: the decision can no longer be undone"));
    };
    tick();
    undoTimer = setInterval(tick, 250);
    undoForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (undoButton.disabled) return;
      undoButton.disabled = true;
      try {
        const r = await fetch(undoForm.action, { method: "POST", body: new URLSearchParams(new FormData(undoForm)),
                                                 headers: { accept: "application/json" } });
        const body = await r.json();
        if (r.ok) { window.location = body.url; return; }
        undoClosed(_("undo refused: %(why)s", { why: body.error }));
      } catch (err) { undoButton.disabled = false; undoStatus.textContent = _("could not reach the server; try again"); }
    });
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "Escape") { toggleHelp(false); return; }
    if (typing(e)) return;
    const k = e.key;
    if (k === "?") { toggleHelp(); e.preventDefault(); return; }
    if (!help.hidden) return;
    if (k === "u" && undoForm) { if (!undoButton.disabled) undoForm.requestSubmit(undoButton); e.preventDefault(); return; }
    if (k === "/" && document.getElementById("search")) { document.getElementById("search").focus(); e.preventDefault(); return; }
    if (page === "queue") {
      if (k === "j") select(current + 1);
      else if (k === "k") select(current - 1);
      else if (k === "Enter" && current >= 0) window.location = rows[current].dataset.href;
      else if (k === "n") { const c = document.getElementById("claim-form"); if (c) c.submit(); }
      else if (k === "x" && current >= 0) { const p = rows[current].querySelector("input.pick"); if (p) { p.checked = !p.checked; recount(); } }
      else return;
      e.preventDefault();
    } else if (page === "item") {
      if (k === "a") submit("approve");
      else if (k === "r") submit("reject");
      else if (k === "e") submit("escalate");
      else if (k === "j") focusHit(hit + 1);
      else if (k === "k") focusHit(hit - 1);
      else return;
      e.preventDefault();
    }
  });

  // -- lease countdown, extension, expiry, and giving the item back when the page is left -----------
  const left = document.getElementById("lease-left");
  const extend = document.getElementById("extend");
  const lease = document.getElementById("lease");
  const csrf = () => (document.querySelector("input[name=_csrf_token]") || {}).value || "";
  const expire = (message) => {
    clearInterval(timer);
    lease.textContent = message;
    lease.classList.add("expired");
    if (form) form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  };
  let timer = null;
  if (left) {
    let seconds = parseInt(left.dataset.seconds, 10);
    timer = setInterval(() => {
      seconds = Math.max(0, seconds - 1);
      left.textContent = seconds;
      if (seconds === 0) expire(_("lease expired: reload the item to claim it again before deciding"));
    }, 1000);
    if (extend) extend.addEventListener("click", async () => {
      const r = await fetch(extend.dataset.url, { method: "POST", headers: { "x-csrftoken": csrf() } });
      if (r.ok) { seconds = Math.round((await r.json()).lease_seconds); left.textContent = seconds; }
      else expire(_("lease lost: somebody else may hold the item now; reload it"));
    });
    const release = document.getElementById("release-form");
    window.addEventListener("pagehide", () => {
      if (submitting || !release || lease.classList.contains("expired")) return;
      const data = new URLSearchParams({ _csrf_token: csrf() });  // a form post, so CSRF applies as to any form
      navigator.sendBeacon(release.action.replace(/\?.*$/, "") + "?beacon=1", data);
    });
  }
})();
