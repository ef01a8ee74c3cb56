// Keyboard shortcuts and the lease timer. Everything also works without JavaScript (plain forms).
(function () {
  "use strict";
  const page = document.body.dataset.page;
  const help = document.getElementById("help");
  const toggleHelp = (show) => { help.hidden = show === undefined ? !help.hidden : !show; };
  document.querySelectorAll("[data-help]").forEach((b) => b.addEventListener("click", () => toggleHelp()));

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
  const submit = (action) => {
    if (!form) return;
    const button = form.querySelector(`button[value="${action}"]`);
    if (!button) return;
    if (action === "reject") {
      const reason = document.getElementById("reason");
      if (!reason.value.trim()) { reason.focus(); reason.placeholder = "why? (Enter rejects)"; reason.dataset.rejectOnEnter = "1"; return; }
    }
    form.requestSubmit(button);
  };
  const reason = document.getElementById("reason");
  if (reason) {
    reason.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); if (reason.value.trim()) form.requestSubmit(document.getElementById("reject")); }
      if (e.key === "Escape") reason.blur();
    });
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "Escape") { toggleHelp(false); return; }
    if (typing(e)) return;
    const k = e.key;
    if (k === "?") { toggleHelp(); e.preventDefault(); return; }
    if (page === "queue") {
      if (k === "j") select(current + 1);
      else if (k === "k") select(current - 1);
      else if (k === "Enter" && current >= 0) window.location = rows[current].dataset.href;
      else if (k === "n") { const c = document.getElementById("claim-form"); if (c) c.submit(); }
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

  // -- lease countdown and extension ----------------------------------------------------------------
  const left = document.getElementById("lease-left");
  const extend = document.getElementById("extend");
  if (left) {
    let seconds = parseInt(left.dataset.seconds, 10);
    setInterval(() => { seconds = Math.max(0, seconds - 1); left.textContent = seconds; }, 1000);
    if (extend) extend.addEventListener("click", async () => {
      const token = document.querySelector("input[name=_csrf_token]").value;
      const r = await fetch(extend.dataset.url, { method: "POST", headers: { "x-csrftoken": token } });
      const body = await r.json();
      if (r.ok) { seconds = Math.round(body.lease_seconds); left.textContent = seconds; }
      else { left.textContent = "lost"; }
    });
  }
})();
