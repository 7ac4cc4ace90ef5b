// The pipeline pages: the list of pipes with a form to start one from a template, and one
// pipe's page: its element graph (coloured by state, with progress and work item counts),
// pause / resume / stop, and its log, refreshed every two seconds.

import { api } from "./api.js";
import { clear, fmtTime, h, progressBar, toast } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 170;
const BOX_H = 62;
const GAP_X = 60;
const GAP_Y = 24;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export async function pipesPage(root, app) {
  const [pipes, templates] = await Promise.all([api("GET", "/api/pipes"), api("GET", "/api/pipelines/templates")]);
  const select = h("select", { id: "pipe-template" }, templates.map((t) => h("option", { value: t.name, title: t.description }, t.name)));
  const name = h("input", { id: "pipe-name", placeholder: "name (optional)", maxlength: 100 });
  const about = h("p", { class: "muted small", id: "template-about" }, templates.length ? templates[0].description : "");
  select.addEventListener("change", () => {
    const t = templates.find((x) => x.name === select.value);
    about.textContent = t ? t.description : "";
  });
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const body = { template: select.value };
          if (name.value.trim()) body.name = name.value.trim();
          const pipe = await api("POST", "/api/pipes", body);
          toast(`Started pipe ${pipe.name}`);
          location.hash = `#/pipes/${pipe.id}`;
        } catch (err) {
          toast(err.message, "error");
        }
      },
    },
    h("label", {}, "Template ", select),
    name,
    h("button", { class: "primary", type: "submit", id: "pipe-start" }, "Start pipe"),
  );
  const rows = pipes.map((p) =>
    h(
      "tr",
      { class: `pipe ${p.state}` },
      h("td", {}, p.id),
      h("td", {}, h("a", { href: `#/pipes/${p.id}` }, p.name)),
      h("td", {}, p.template || ""),
      h("td", {}, h("span", { class: `state ${p.state}` }, p.state)),
      h("td", {}, fmtTime(p.created_at)),
    ),
  );
  clear(root).append(
    h("h2", {}, "Pipelines"),
    form,
    about,
    pipes.length
      ? h("table", { class: "pipes", id: "pipes-table" }, h("thead", {}, h("tr", {}, ["#", "Name", "Template", "State", "Created"].map((t) => h("th", {}, t)))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No pipes yet: start one from a template."),
  );
}

function layers(elements) {
  // Longest path from a source: each element sits one column right of its latest input.
  const byId = new Map(elements.map((e) => [e.element, e]));
  const depth = new Map();
  const visit = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0; // a loop edge; loops point backwards
    seen.add(id);
    const el = byId.get(id);
    const d = el && el.inputs.length ? Math.max(...el.inputs.map((i) => visit(i, seen) + 1)) : 0;
    depth.set(id, d);
    return d;
  };
  for (const e of elements) visit(e.element);
  return depth;
}

function graph(status, onPick) {
  const depth = layers(status.elements);
  const rowsAt = new Map();
  const pos = new Map();
  for (const e of status.elements) {
    const col = depth.get(e.element) || 0;
    const row = rowsAt.get(col) || 0;
    rowsAt.set(col, row + 1);
    pos.set(e.element, { x: 10 + col * (BOX_W + GAP_X), y: 10 + row * (BOX_H + GAP_Y) });
  }
  const width = Math.max(...[...pos.values()].map((p) => p.x)) + BOX_W + 20;
  const height = Math.max(...[...pos.values()].map((p) => p.y)) + BOX_H + 20;
  const svg = s("svg", { id: "pipe-graph", class: "pipe-graph", width, height, viewBox: `0 0 ${width} ${height}` });
  svg.append(
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }))),
  );
  for (const [from, to] of status.edges) {
    const a = pos.get(from);
    const b = pos.get(to);
    if (!a || !b) continue;
    svg.append(s("line", { x1: a.x + BOX_W, y1: a.y + BOX_H / 2, x2: b.x, y2: b.y + BOX_H / 2, class: "edge", "marker-end": "url(#arrow)" }));
  }
  for (const e of status.elements) {
    const p = pos.get(e.element);
    const g = s("g", { class: `node ${e.state}`, "data-element": e.element, "data-state": e.state, transform: `translate(${p.x},${p.y})` });
    g.addEventListener("click", () => onPick(e.element));
    let detail = e.state;
    if (e.type === "annotask") detail += ` · ${e.items.done || 0}/${Object.values(e.items).reduce((x, y) => x + y, 0)} done`;
    else if (e.progress_total) detail += ` · ${e.progress_done}/${e.progress_total}`;
    g.append(
      s("title", {}, e.error || e.message || e.state),
      s("rect", { width: BOX_W, height: BOX_H, rx: 8 }),
      s("text", { x: 10, y: 20, class: "name" }, e.name || e.element),
      s("text", { x: 10, y: 37, class: "type" }, e.type),
      s("text", { x: 10, y: 53, class: "detail" }, detail),
    );
    if (e.fraction !== null && e.fraction !== undefined) {
      g.append(s("rect", { x: 0, y: BOX_H - 4, width: Math.round(BOX_W * Math.min(1, e.fraction)), height: 4, class: "bar" }));
    }
    svg.append(g);
  }
  return svg;
}

export async function pipePage(root, app, pipeId) {
  let element = null;
  let lastLog = 0;
  const head = h("div", { class: "pipe-head" });
  const graphBox = h("div", { class: "graph-box" });
  const table = h("table", { class: "elements", id: "pipe-elements" });
  const logTitle = h("h3", {}, "Log");
  const log = h("pre", { class: "log", id: "pipe-log" });

  async function control(action) {
    try {
      await api("POST", `/api/pipes/${pipeId}/${action}`);
      toast(`Pipe ${action}d`.replace("stopd", "stopped"));
      await refresh();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  function pick(el) {
    element = element === el ? null : el;
    lastLog = 0;
    log.textContent = "";
    logTitle.textContent = element ? `Log of ${element} (click it again for all)` : "Log";
    refreshLog().catch(() => {});
  }

  async function refresh() {
    const st = await api("GET", `/api/pipes/${pipeId}`);
    clear(head).append(
      h("h2", {}, `Pipe ${st.name} `, h("span", { id: "pipe-state", class: `state ${st.state}`, dataset: { state: st.state } }, st.state)),
      h("p", { class: "muted small" }, `template ${st.template}`),
      h(
        "div",
        { class: "actions" },
        h("button", { id: "pipe-pause", disabled: st.state !== "running", onclick: () => control("pause") }, "Pause"),
        h("button", { id: "pipe-resume", disabled: !["paused", "stopped"].includes(st.state), onclick: () => control("resume") }, "Resume"),
        h("button", { id: "pipe-stop", disabled: ["finished", "stopped"].includes(st.state), onclick: () => control("stop") }, "Stop"),
      ),
      ...(st.driver_error ? [h("p", { class: "error", id: "pipe-driver-error" }, st.driver_error)] : []),
    );
    clear(graphBox).append(graph(st, pick));
    clear(table).append(
      h("thead", {}, h("tr", {}, ["Element", "Type", "State", "Iteration", "Progress", "Work items", "Message"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        st.elements.map((e) =>
          h(
            "tr",
            { class: `element ${e.state}`, dataset: { element: e.element }, onclick: () => pick(e.element) },
            h("td", {}, e.element),
            h("td", {}, e.type),
            h("td", {}, h("span", { class: `state ${e.state}` }, e.state)),
            h("td", {}, e.iteration),
            h("td", {}, e.progress_total || e.state === "in_progress" ? progressBar(e.progress_done, e.progress_total, e.state) : ""),
            h("td", {}, e.task_id ? [h("a", { href: `#/annotate/${e.task_id}` }, e.task), ` ${e.items.done}/${Object.values(e.items).reduce((x, y) => x + y, 0)} done`] : ""),
            h("td", { class: e.error ? "error" : "" }, e.error || e.message || ""),
          ),
        ),
      ),
    );
  }

  async function refreshLog() {
    const q = new URLSearchParams({ after: String(lastLog) });
    if (element) q.set("element", element);
    const lines = await api("GET", `/api/pipes/${pipeId}/logs?${q}`);
    for (const r of lines) {
      lastLog = Math.max(lastLog, r.id);
      const where = r.element ? ` ${r.element}${r.iteration !== null ? `#${r.iteration}` : ""}` : "";
      log.append(`${fmtTime(r.created_at)} ${r.level}${where}: ${r.message}\n`);
    }
    if (lines.length) log.scrollTop = log.scrollHeight;
  }

  clear(root).append(head, graphBox, table, logTitle, log);
  await refresh();
  await refreshLog();
  app.timers.push(
    setInterval(() => {
      refresh().catch(() => {});
      refreshLog().catch(() => {});
    }, 2000),
  );
}
