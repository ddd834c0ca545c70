// lake console: the lineage graph. Our own layered layout (no library): datasets in columns by
// hops from the root, ordered within a column by the barycentre of their neighbours.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 210, BOX_H = 40, GAP_X = 90, GAP_Y = 18;

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

const state = { root: null, ns: "", data: null, collapsed: new Set(), extra: { nodes: [], edges: [] } };

function params(form) {
  const p = new URLSearchParams();
  p.set("direction", form.direction.value);
  p.set("depth", form.depth.value);
  if (form.version.value) p.set("version", form.version.value);
  if (form.column.value) p.set("column", form.column.value);
  p.set("columns", form.columns.checked ? "1" : "0");
  if (state.ns) p.set("ns", state.ns);
  return p;
}

async function fetchGraph(root, p) {
  const response = await fetch(BASE + "/api/lineage/" + encodeURI(root) + "?" + p.toString(), { credentials: "same-origin" });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && body.detail) || ("HTTP " + response.status));
  return body;
}

// Everything shown: the fetched graph, nodes merged in by expanding, drift reports as leaves.
function fullGraph() {
  const nodes = new Map(), edges = [];
  for (const n of state.data.nodes.concat(state.extra.nodes)) if (!nodes.has(n.id)) nodes.set(n.id, Object.assign({}, n));
  const seen = new Set();
  for (const e of state.data.edges.concat(state.extra.edges)) {
    const key = e.from + "\u0000" + e.to;
    if (!seen.has(key) && nodes.has(e.from) && nodes.has(e.to)) { seen.add(key); edges.push(e); }
  }
  for (const r of state.data.reports || []) {
    const owner = nodes.get(r.dataset);
    if (!owner) continue;
    const id = "report:" + r.id;
    nodes.set(id, { id: id, name: null, label: "drift report (" + r.status + ")", kind: "drift report",
      depth: owner.depth + 1, href: "/monitoring/reports/" + r.id, report: r });
    edges.push({ from: r.dataset, to: id, job: "monitor" });
  }
  return { nodes, edges };
}

// What stays visible: walk away from the root on each side, stopping at collapsed nodes.
function visibleIds(g) {
  const out = new Map(), inc = new Map();
  for (const e of g.edges) {
    (out.get(e.from) || out.set(e.from, []).get(e.from)).push(e.to);
    (inc.get(e.to) || inc.set(e.to, []).get(e.to)).push(e.from);
  }
  const keep = new Set([state.data.root]);
  for (const links of [out, inc]) {
    const stack = [state.data.root];
    while (stack.length) {
      const id = stack.pop();
      if (id !== state.data.root && state.collapsed.has(id)) continue;
      for (const next of links.get(id) || []) if (!keep.has(next)) { keep.add(next); stack.push(next); }
    }
  }
  return { keep, out, inc };
}

function layout(g, keep, out, inc) {
  const layers = new Map();
  for (const id of keep) {
    const d = g.nodes.get(id).depth;
    (layers.get(d) || layers.set(d, []).get(d)).push(id);
  }
  const depths = Array.from(layers.keys()).sort((a, b) => a - b);
  const pos = new Map();
  for (const d of depths) {
    layers.get(d).sort();
    layers.get(d).forEach((id, i) => pos.set(id, i));
  }
  const bary = (id, links) => {
    const ns = (links.get(id) || []).filter((x) => keep.has(x));
    if (!ns.length) return pos.get(id);
    return ns.reduce((s, x) => s + pos.get(x), 0) / ns.length;
  };
  for (let sweep = 0; sweep < 4; sweep++) {
    const order = sweep % 2 === 0 ? depths : depths.slice().reverse();
    const links = sweep % 2 === 0 ? inc : out;
    for (const d of order) {
      const ids = layers.get(d);
      const score = new Map(ids.map((id) => [id, bary(id, links)]));
      ids.sort((a, b) => score.get(a) - score.get(b) || (a < b ? -1 : 1));
      ids.forEach((id, i) => pos.set(id, i));
    }
  }
  const tallest = Math.max(...depths.map((d) => layers.get(d).length));
  const coords = new Map();
  depths.forEach((d, col) => {
    const ids = layers.get(d);
    const offset = (tallest - ids.length) * (BOX_H + GAP_Y) / 2;
    ids.forEach((id, i) => coords.set(id, { x: 20 + col * (BOX_W + GAP_X), y: 20 + offset + i * (BOX_H + GAP_Y) }));
  });
  return { coords, width: 40 + depths.length * (BOX_W + GAP_X), height: 40 + tallest * (BOX_H + GAP_Y) };
}

function draw() {
  const t0 = performance.now();
  const svg = document.getElementById("graph");
  const g = fullGraph();
  const { keep, out, inc } = visibleIds(g);
  const { coords, width, height } = layout(g, keep, out, inc);
  svg.replaceChildren();
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  const defs = svgEl("defs", {});
  const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto" });
  marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a96a3" }));
  defs.append(marker);
  svg.append(defs);
  const edgeLayer = svgEl("g", { "aria-hidden": "true" });
  const list = document.getElementById("edge-list");
  const items = [];
  const curve = (a, b, dy) => {
    const x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2 + dy, x2 = b.x, y2 = b.y + BOX_H / 2 + dy;
    const mid = (x1 + x2) / 2;
    return "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2;
  };
  const shown = g.edges.filter((e) => keep.has(e.from) && keep.has(e.to));
  const titled = shown.length <= 600;  // a tooltip per edge costs a node each: big graphs skip them
  for (const e of shown) {
    const path = svgEl("path", { class: "edge", d: curve(coords.get(e.from), coords.get(e.to), 0), "marker-end": "url(#arrow)" });
    if (titled) path.append(svgEl("title", {}, e.from + " → " + e.to + (e.job ? " (" + e.job + ")" : "")));
    edgeLayer.append(path);
    items.push(() => e.from + " → " + e.to + (e.job ? " by " + e.job : ""));
  }
  const showColumns = document.getElementById("show-columns").checked;
  let columnEdges = 0;
  if (showColumns) for (const c of state.data.column_edges || []) {
    if (!keep.has(c.from) || !keep.has(c.to)) continue;
    columnEdges++;
    const path = svgEl("path", { class: "edge col", d: curve(coords.get(c.from), coords.get(c.to), 6) });
    if (titled) path.append(svgEl("title", {}, c.from + "." + c.from_column + " → " + c.to + "." + c.to_column + (c.transformation ? " (" + c.transformation + ")" : "")));
    edgeLayer.append(path);
    items.push(() => "column " + c.from + "." + c.from_column + " → " + c.to + "." + c.to_column);
  }
  svg.append(edgeLayer);
  const nodeLayer = svgEl("g", {});
  for (const id of keep) {
    const n = g.nodes.get(id), at = coords.get(id);
    const hasMore = (out.get(id) || []).length + (inc.get(id) || []).length > 1 || state.collapsed.has(id);
    const cls = "node" + (id === state.data.root ? " root" : "") + (state.collapsed.has(id) ? " collapsed" : "");
    const label = n.label + (n.kind_label ? " (" + n.kind_label + ")" : "");
    const group = svgEl("g", { class: cls, transform: "translate(" + at.x + "," + at.y + ")", tabindex: "0",
      role: "link", "aria-label": label, "data-id": id });
    group.append(svgEl("title", {}, label));
    group.append(svgEl("rect", { width: BOX_W, height: BOX_H, rx: 5 }));
    group.append(svgEl("text", { x: 8, y: 16 }, short(n.label, 30)));
    group.append(svgEl("text", { x: 8, y: 32, class: "sub" }, short((n.kind_label || n.kind || "") + (n.layer ? " · " + n.layer : ""), 32)));
    if (id !== state.data.root && n.name) {
      const toggle = svgEl("g", { class: "toggle", "data-toggle": id, transform: "translate(" + (BOX_W - 22) + ",10)" });
      toggle.append(svgEl("rect", { width: 18, height: 18, rx: 3, fill: "#eef2f7", stroke: "#3d5a80" }));
      toggle.append(svgEl("text", { x: 5, y: 14 }, state.collapsed.has(id) || !hasMore ? "+" : "−"));
      toggle.append(svgEl("title", {}, state.collapsed.has(id) || !hasMore ? "expand" : "collapse"));
      group.append(toggle);
    }
    nodeLayer.append(group);
  }
  svg.append(nodeLayer);
  // The list is built when opened: thousands of items nobody reads cost as much as the drawing.
  state.items = items;
  const details = list.closest("details");
  if (details && details.open) fillList(); else list.replaceChildren();
  state.rootAt = coords.get(state.data.root);
  svg.getBBox();  // force layout, so the time below includes it
  const ms = performance.now() - t0;
  svg.dataset.drawMs = ms.toFixed(1);
  svg.dataset.nodes = String(keep.size);
  window.lineageDrawMs = ms;
  const status = document.getElementById("lineage-status");
  status.textContent = keep.size + " nodes, " + shown.length + " edges"
    + (showColumns ? ", " + columnEdges + " column edges" : "") + (state.data.mode !== "dataset" ? " (" + state.data.mode + " lineage)" : "");
}

function fillList() {
  document.getElementById("edge-list").replaceChildren(...(state.items || []).map((f) => el("li", {}, f())));
}

function setPick(select, value) {
  if (value && !Array.from(select.options).some((o) => o.value === value)) select.append(el("option", { value: value }, value));
  select.value = value || "";
}

// After walking to another dataset, its own versions and columns fill the pickers.
async function refreshPickers(root) {
  const form = document.getElementById("lineage-form");
  try {
    const ds = await fetch(BASE + "/api/datasets/" + encodeURI(root) + (state.ns ? "?ns=" + encodeURIComponent(state.ns) : ""),
      { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : null));
    if (!ds) return;
    const keep = [form.version.value, form.column.value];
    form.version.replaceChildren(el("option", { value: "" }, "current (all versions)"),
      ...(ds.timeline || []).map((v) => el("option", { value: String(v.version) }, "v" + v.version + ": which inputs built it")));
    form.column.replaceChildren(el("option", { value: "" }, "whole dataset"),
      ...(ds.schema || []).map((c) => el("option", { value: c.name }, c.name)));
    setPick(form.version, keep[0]);
    setPick(form.column, keep[1]);
  } catch (e) { /* the pickers keep their options; the graph is what matters */ }
}

async function load(root, push) {
  const form = document.getElementById("lineage-form");
  const p = params(form);
  const status = document.getElementById("lineage-status");
  const mine = state.seq = (state.seq || 0) + 1;
  let data;
  try {
    data = await fetchGraph(root, p);
  } catch (e) { if (mine === state.seq) status.textContent = "Cannot show the lineage: " + e.message; return; }
  if (mine !== state.seq) return;  // a newer walk (or Back) already asked: its answer wins
  state.data = data;
  if (state.root !== null && state.root !== root) refreshPickers(root);
  state.root = root;
  state.collapsed.clear();
  state.extra = { nodes: [], edges: [] };
  const link = document.getElementById("lineage-root-link");
  link.textContent = root;
  link.setAttribute("href", BASE + "/datasets/" + encodeURI(root) + (state.ns ? "?ns=" + encodeURIComponent(state.ns) : ""));
  document.title = "Lineage of " + root + " · lake console";
  if (push) history.pushState({ root: root }, "", BASE + "/lineage/" + encodeURI(root) + "?" + p.toString());
  draw();
  const wrap = document.querySelector(".graph-wrap");
  if (wrap && state.rootAt) {  // the root in view, however tall the graph
    wrap.scrollLeft = Math.max(0, state.rootAt.x + BOX_W / 2 - wrap.clientWidth / 2);
    wrap.scrollTop = Math.max(0, state.rootAt.y + BOX_H / 2 - wrap.clientHeight / 2);
  }
  window.lineageReady = true;
}

async function toggle(id) {
  const g = fullGraph();
  const { out, inc } = visibleIds(g);
  const n = g.nodes.get(id);
  if (state.collapsed.has(id)) { state.collapsed.delete(id); draw(); return; }
  const away = n.depth < 0 ? inc : out;
  if ((away.get(id) || []).length) { state.collapsed.add(id); draw(); return; }
  // a leaf: fetch one hop beyond it and merge
  const form = document.getElementById("lineage-form");
  const p = params(form);
  p.set("depth", "1");
  p.set("direction", n.depth < 0 ? "upstream" : "downstream");
  p.delete("column"); p.delete("version");
  if (n.home === false) p.set("ns", n.namespace); else p.delete("ns");
  try {
    const more = await fetchGraph(n.name, p);
    for (const m of more.nodes) state.extra.nodes.push(Object.assign({}, m, { depth: n.depth + m.depth }));
    state.extra.edges.push(...more.edges);
    draw();
  } catch (e) { document.getElementById("lineage-status").textContent = "Cannot expand: " + e.message; }
}

function setupLineage() {
  const form = document.getElementById("lineage-form");
  if (!form) return;
  const svg = document.getElementById("graph");
  const nodeOf = (target) => target.closest ? target.closest("g.node") : null;
  const walk = (group) => {
    const id = group.dataset.id;
    const n = fullGraph().nodes.get(id);
    if (!n) return;
    if (n.kind === "drift report") { location.href = BASE + n.href; return; }
    if (!n.name || id === state.data.root) return;
    form.version.value = ""; form.column.value = "";
    state.ns = n.home ? "" : n.namespace;
    load(n.name, true);
  };
  svg.addEventListener("click", (ev) => {
    const t = ev.target.closest("g.toggle");
    if (t) { ev.stopPropagation(); toggle(t.dataset.toggle); return; }
    const group = nodeOf(ev.target);
    if (group) walk(group);
  });
  svg.addEventListener("keydown", (ev) => {
    const group = nodeOf(ev.target);
    if (!group) return;
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); walk(group); }
    if (ev.key === "+" || ev.key === "-" || ev.key === "−") { ev.preventDefault(); toggle(group.dataset.id); }
  });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(state.root || form.dataset.root, true); });
  const details = document.getElementById("edge-list").closest("details");
  if (details) details.addEventListener("toggle", () => { if (details.open) fillList(); });
  window.addEventListener("popstate", () => {
    const m = location.pathname.slice(BASE.length).match(/^\/lineage\/(.+)$/);
    if (!m) return;
    const q = new URLSearchParams(location.search);  // the form follows the address back
    state.ns = q.get("ns") || "";
    form.direction.value = q.get("direction") || "both";
    form.depth.value = q.get("depth") || "3";
    form.columns.checked = q.get("columns") !== "0";
    setPick(form.version, q.get("version"));
    setPick(form.column, q.get("column"));
    load(decodeURI(m[1]), false);
  });
  state.ns = form.dataset.ns || "";
  load(form.dataset.root, false);
}

document.addEventListener("DOMContentLoaded", setupLineage);
