// Spark dashboard: live updates over Server-Sent Events, the schedule preview, confirmations.
// Plain JavaScript, no dependencies; the server renders every piece of HTML.
"use strict";

(function () {
  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const base = meta("ui-base");

  async function fragment(url) {
    const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (response.status === 401) { window.location.reload(); return null; }
    if (!response.ok) { return null; }
    return response.text();
  }

  function parse(html, tag) {
    const holder = document.createElement(tag);
    holder.innerHTML = html.trim();
    return holder;
  }

  // -- confirmations ----------------------------------------------------------------------
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // -- live updates -----------------------------------------------------------------------
  const tables = Array.from(document.querySelectorAll("[data-live-tasks]"));
  const panel = document.getElementById("task-panel");
  const counts = document.getElementById("overview-counts");
  let countsTimer = null;

  function countRows(step) {
    const total = document.getElementById("tasks-total");
    if (total) { total.textContent = String(Math.max(0, Number(total.textContent) + step)); }
  }

  async function updateRow(table, change) {
    const url = `${table.dataset.liveTasks}${encodeURIComponent(change.id)}?${table.dataset.filter}`;
    const html = await fragment(url);
    if (html === null) { return; }
    const body = table.tBodies[0];
    const existing = document.getElementById(`task-${change.id}`);
    const row = parse(`<table><tbody>${html}</tbody></table>`, "div").querySelector("tr");
    if (existing) {
      if (row) { existing.replaceWith(row); } else { existing.remove(); countRows(-1); }
    } else if (row) {
      countRows(1);
      if (table.dataset.firstPage === "yes") {
        body.insertBefore(row, body.firstChild);
        const empty = table.parentElement.querySelector(".empty");
        if (empty) { empty.remove(); }
      }
    }
  }

  async function updatePanel(change) {
    if (!panel || panel.dataset.task !== change.id) { return; }
    const html = await fragment(panel.dataset.fragment);
    if (html !== null) { panel.innerHTML = html; }
  }

  function updateCounts() {
    if (!counts) { return; }
    clearTimeout(countsTimer);
    countsTimer = setTimeout(async () => {
      const html = await fragment(counts.dataset.fragment);
      if (html !== null) { counts.innerHTML = html; }
    }, 300);
  }

  let source = null;
  let opened = false;
  const indicator = document.getElementById("live");

  function connect() {
    if (source || !(tables.length || panel || counts)) { return; }
    source = new EventSource(`${base}/events`);
    source.addEventListener("open", () => {
      if (indicator) { indicator.classList.add("on"); }
      if (opened) { catchUp(); }  // a reconnection: changes may have been missed meanwhile
      opened = true;
    });
    source.addEventListener("error", () => { if (indicator) { indicator.classList.remove("on"); } });
    source.addEventListener("task", (event) => {
      const change = JSON.parse(event.data);
      tables.forEach((table) => { updateRow(table, change); });
      updatePanel(change);
      updateCounts();
    });
  }

  function disconnect() {
    if (source) { source.close(); source = null; }
    if (indicator) { indicator.classList.remove("on"); }
  }

  // A hidden tab holds no connection; coming back refreshes what changed meanwhile.
  function catchUp() {
    updateCounts();
    if (panel) { updatePanel({ id: panel.dataset.task }); }
    tables.forEach((table) => {
      Array.from(table.tBodies[0].rows).forEach((row) => {
        if (row.dataset.task) { updateRow(table, { id: row.dataset.task }); }
      });
    });
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) { disconnect(); } else { connect(); }  // its "open" catches up
  });
  window.addEventListener("pagehide", disconnect);
  connect();

  // -- schedule preview -------------------------------------------------------------------
  const preview = document.getElementById("preview");
  if (preview) {
    const form = document.getElementById("schedule-form");
    const list = document.getElementById("preview-times");
    const error = document.getElementById("preview-error");
    let timer = null;
    let asked = 0;

    async function refresh() {
      const query = new URLSearchParams({
        schedule_type: form.elements.schedule_type.value,
        schedule_expr: form.elements.schedule_expr.value,
        timezone: form.elements.timezone.value,
      });
      const number = ++asked;
      const response = await fetch(`${preview.dataset.preview}?${query}`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (number !== asked || !response.ok) { return; }  // a newer keystroke wins
      const answer = await response.json();
      list.replaceChildren(...answer.times.map((time) => {
        const item = document.createElement("li");
        const stamp = document.createElement("time");
        stamp.dateTime = time;
        stamp.textContent = time.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC");
        item.append(stamp);
        return item;
      }));
      error.hidden = !answer.error;
      error.textContent = answer.error || "";
    }

    const soon = () => { clearTimeout(timer); timer = setTimeout(refresh, 250); };
    ["schedule_expr", "timezone"].forEach((name) => form.elements[name].addEventListener("input", soon));
    form.elements.schedule_type.addEventListener("change", soon);
    refresh();
  }
})();
