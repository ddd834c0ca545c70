// lake console: search as you type, keyboard navigation, dataset page actions.
// Every value from the server is put in the page with textContent (never as HTML).
"use strict";

// Where the console is mounted (/ui under lake serve, nothing for lake ui): every address starts with it.
const BASE = document.body ? (document.body.dataset.base || "") : "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function getJSON(url, options) {
  const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options || {}));
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.detail) || ("HTTP " + response.status));
  return body;
}

function postJSON(url, data) {
  return getJSON(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(data) });
}

// ------------------------------------------------------------------ search

function setupSearch() {
  const form = document.getElementById("search-form");
  if (!form) return;
  const input = document.getElementById("q");
  const results = document.getElementById("results");
  const status = document.getElementById("search-status");
  let timer = null, seq = 0;

  function params() {
    const p = new URLSearchParams();
    p.set("q", input.value);
    for (const s of form.querySelectorAll("select[data-facet]")) if (s.value) p.set(s.name, s.value);
    return p;
  }

  function renderFacets(facets) {
    for (const s of form.querySelectorAll("select[data-facet]")) {
      const chosen = s.value;
      const values = facets[s.name] || [];
      s.replaceChildren(el("option", { value: "" }, "any"));
      let seen = false;
      for (const [value, n] of values) {
        const o = el("option", { value: value }, value + " (" + n + ")");
        if (value === chosen) { o.selected = true; seen = true; }
        s.append(o);
      }
      if (chosen && !seen) { const o = el("option", { value: chosen }, chosen); o.selected = true; s.append(o); }
    }
  }

  function render(data) {
    results.replaceChildren(...data.hits.map((h) => {
      const tags = el("span", { class: "tags" }, ...h.tags.map((t) => el("span", { class: "tag" }, t)),
        ...h.owners.map((o) => el("span", { class: "owner" }, "@" + o)));
      return el("li", {}, el("a", { class: "hit", href: BASE + h.href },
        el("strong", {}, h.name), " ", el("span", { class: "badge" }, h.kind_label),
        h.quality ? el("span", { class: "badge q-" + h.quality }, "quality " + h.quality) : null,
        h.current_version !== null ? el("span", { class: "muted" }, " v" + h.current_version) : null,
        el("span", { class: "desc" }, h.description || ""), tags));
    }));
    status.textContent = data.hits.length + " of " + data.total + " shown";
    renderFacets(data.facets);
  }

  async function run() {
    const mine = ++seq;
    const p = params();
    try {
      const data = await getJSON(BASE + "/api/search?" + p.toString());
      if (mine !== seq) return;  // a newer keystroke already asked
      render(data);
      history.replaceState(null, "", BASE + "/?" + p.toString());
    } catch (e) {
      status.textContent = "Search failed: " + e.message;
    }
  }

  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 120); });
  for (const s of form.querySelectorAll("select[data-facet]")) s.addEventListener("change", run);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(); });

  function hits() { return Array.from(results.querySelectorAll("a.hit")); }
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown") { const h = hits(); if (h.length) { ev.preventDefault(); h[0].focus(); } }
    if (ev.key === "Enter") { const h = hits(); if (h.length && input.value) { ev.preventDefault(); location.href = h[0].href; } }
  });
  results.addEventListener("keydown", (ev) => {
    const h = hits(); const i = h.indexOf(document.activeElement);
    if (i < 0) return;
    if (ev.key === "ArrowDown" && i + 1 < h.length) { ev.preventDefault(); h[i + 1].focus(); }
    if (ev.key === "ArrowUp") { ev.preventDefault(); (i === 0 ? input : h[i - 1]).focus(); }
    if (ev.key === "Escape") { ev.preventDefault(); input.focus(); }
  });
}

// ------------------------------------------------------------------ dataset

function table(columns, rows, cellClass) {
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { scope: "col" }, c)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((v, i) => {
      const cls = cellClass ? cellClass(v, i) : null;
      return el("td", cls ? { class: cls } : {}, v === null ? "null" : (typeof v === "object" ? JSON.stringify(v) : v));
    })))));
}

function setupDataset() {
  const root = document.getElementById("dataset");
  if (!root) return;
  const name = root.dataset.name, version = root.dataset.version;
  const api = BASE + "/api/datasets/" + encodeURI(name);

  const sampleButton = document.getElementById("load-sample");
  if (sampleButton) sampleButton.addEventListener("click", async () => {
    const box = document.getElementById("sample");
    box.textContent = "Loading…";
    try {
      const data = await getJSON(api + "/sample?limit=20" + (version ? "&version=" + version : ""));
      box.replaceChildren(el("p", { class: "muted" }, data.rows.length + " rows"),
        table(data.columns, data.rows, (v) => (v === null ? "masked" : null)));
    } catch (e) { box.textContent = "Cannot show rows: " + e.message; }
  });

  const diffForm = document.getElementById("diff-form");
  if (diffForm) diffForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const box = document.getElementById("diff");
    try {
      const d = await getJSON(api + "/diff?a=" + diffForm.a.value + "&b=" + diffForm.b.value);
      const items = [];
      for (const c of d.added) items.push(el("li", { class: "diff-added" }, "+ " + c.name + " " + (c.type || "")));
      for (const c of d.removed) items.push(el("li", { class: "diff-removed" }, "− " + c.name + " " + (c.type || "")));
      for (const c of d.changed) items.push(el("li", { class: "diff-changed" },
        "~ " + c.name + ": " + c.from.type + (c.from.nullable ? "" : " not null") + " → " + c.to.type + (c.to.nullable ? "" : " not null")));
      box.replaceChildren(el("h3", {}, "Schema v" + d.from + " → v" + d.to),
        items.length ? el("ul", { class: "diff" }, ...items) : el("p", {}, "No schema change."),
        el("p", { class: "muted" }, d.unchanged + " columns unchanged"));
    } catch (e) { box.textContent = "Cannot compare: " + e.message; }
  });

  const annotate = document.getElementById("annotate-form");
  if (annotate) annotate.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const split = (s) => s.split(",").map((x) => x.trim()).filter((x) => x);
    const owners = split(annotate.owners.value), oldOwners = split(annotate.owners.dataset.current);
    const tags = split(annotate.tags.value), oldTags = split(annotate.tags.dataset.current);
    const status = document.getElementById("annotate-status");
    try {
      await postJSON(api + "/annotations", {
        description: annotate.description.value,
        add_owners: owners.filter((o) => !oldOwners.includes(o)), remove_owners: oldOwners.filter((o) => !owners.includes(o)),
        add_tags: tags.filter((t) => !oldTags.includes(t)), remove_tags: oldTags.filter((t) => !tags.includes(t)),
      });
      location.reload();
    } catch (e) { status.textContent = "Not saved: " + e.message; }
  });

  const columnsForm = document.getElementById("columns-form");
  if (columnsForm) columnsForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const changed = {};  // only the descriptions edited here
    for (const input of columnsForm.querySelectorAll("input[data-column]")) {
      if (input.value !== input.dataset.current) changed[input.dataset.column] = input.value;
    }
    const status = document.getElementById("columns-status");
    if (!Object.keys(changed).length) { status.textContent = "Nothing changed."; return; }
    try {
      await postJSON(api + "/annotations", { column_descriptions: changed });
      location.reload();
    } catch (e) { status.textContent = "Not saved: " + e.message; }
  });

  const saveSheet = document.getElementById("save-sheet");
  if (saveSheet) saveSheet.addEventListener("click", async () => {
    const notes = {};
    for (const t of document.querySelectorAll("textarea[data-sheet]")) notes[t.dataset.sheet] = t.value;
    const status = document.getElementById("sheet-status");
    try { await postJSON(api + "/datasheet", notes); status.textContent = "Saved."; }
    catch (e) { status.textContent = "Not saved: " + e.message; }
  });
}

// ------------------------------------------------------------ saved queries

function setupQueries() {
  const form = document.getElementById("save-query");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const status = document.getElementById("save-status");
    try {
      const saved = await postJSON(BASE + "/api/queries", { name: form.elements["name"].value, sql: form.elements["sql"].value, description: form.elements["description"].value });
      location.href = BASE + "/queries/" + encodeURIComponent(saved.name);
    } catch (e) { status.textContent = "Not saved: " + e.message; }
  });
  const root = document.getElementById("saved-query");
  const run = document.getElementById("run-query");
  if (root && run) run.addEventListener("click", async () => {
    const box = document.getElementById("query-result");
    box.textContent = "Running…";
    try {
      const r = await postJSON(BASE + "/api/queries/" + encodeURIComponent(root.dataset.name) + "/run", {});
      const read = Object.entries(r.read).map(([t, v]) => t + "@" + v).join(", ");
      box.replaceChildren(el("p", { class: "muted" }, r.rows.length + " rows" + (r.truncated ? " (first shown)" : "") + "; read " + read),
        table(r.columns, r.rows, (v) => (v === null ? "masked" : null)));
    } catch (e) { box.textContent = "Cannot run: " + e.message; }
  });
}

document.addEventListener("DOMContentLoaded", () => { setupSearch(); setupDataset(); setupQueries(); });
