// The annotate page: take the next item of a task, draw shapes on its image, accept or
// reject the model's proposals, and finish it. Every change is saved at once (DraftSaver:
// localStorage first, then the server, retried until it gets through).

import { api, DraftSaver } from "./api.js";
import { Editor } from "./editor.js";
import { clear, h, toast } from "./ui.js";

const TOOLS = [
  { id: "select", key: "v", title: "Select, move, resize (V)", kinds: null },
  { id: "pan", key: "h", title: "Pan (H, or hold Space)", kinds: null },
  { id: "box", key: "b", title: "Box (B)", kinds: "bbox" },
  { id: "point", key: "p", title: "Point (P)", kinds: "point" },
  { id: "polygon", key: "g", title: "Polygon (G; Enter or double-click closes)", kinds: "polygon" },
  { id: "line", key: "l", title: "Line (L; Enter or double-click ends)", kinds: "line" },
];

const STATUS_TEXT = {
  saved: "All changes saved",
  saving: "Saving…",
  offline: "Offline: changes kept in this browser, retrying",
  invalid: "Not saved",
  conflict: "Not saved: this item is no longer yours",
  idle: "",
};

function stripShape(s) {
  const out = { kind: s.kind, label: s.label ?? null };
  for (const k of ["box", "point", "line", "polygon", "mask", "confidence", "proposal", "key"]) {
    if (s[k] !== undefined && s[k] !== null) out[k] = s[k];
  }
  return out;
}

export async function annotatePage(root, app, taskId) {
  const task = await api("GET", `/api/tasks/${taskId}`);
  const allLabels = await api("GET", "/api/labels");
  const labels = allLabels.filter((l) => task.labels === null || task.labels.includes(l.id));
  const colors = new Map(allLabels.map((l) => [l.id, l.color || "#3b7dd8"]));
  const names = new Map(allLabels.map((l) => [l.id, l.name]));
  const labelColor = (id) => colors.get(id) || "#e0e0e0";

  let session = null; // the open item
  let currentLabel = labels.length ? labels[0].id : null;

  // -- layout -----------------------------------------------------------------------------
  const statusEl = h("span", { id: "save-status", class: "save-status", dataset: { state: "idle" } });
  const toolButtons = TOOLS.filter((t) => !t.kinds || task.kinds.includes(t.kinds)).map((t) =>
    h("button", { class: "tool", title: t.title, dataset: { tool: t.id }, onclick: () => setTool(t.id) }, t.id),
  );
  const labelButtons = labels.map((l, i) =>
    h(
      "button",
      { class: "label-btn", title: `${l.name} (${i < 9 ? i + 1 : "-"})`, dataset: { label: l.id }, onclick: () => chooseLabel(l.id) },
      h("span", { class: "swatch", dataset: { color: l.color } }),
      i < 9 ? `${i + 1} ${l.name}` : l.name,
    ),
  );
  const canvas = h("canvas", { id: "canvas", tabindex: 0 });
  const shapeList = h("ol", { id: "shape-list", class: "shape-list" });
  const proposalList = h("ul", { id: "proposal-list", class: "proposal-list" });
  const imageLabels = h("div", { id: "image-labels", class: "image-labels" });
  const info = h("div", { class: "item-info" });
  const undoBtn = h("button", { title: "Undo (Ctrl+Z)", onclick: () => undo() }, "undo");
  const redoBtn = h("button", { title: "Redo (Ctrl+Y)", onclick: () => redo() }, "redo");

  clear(root).append(
    h(
      "div",
      { class: "annotate" },
      h(
        "div",
        { class: "toolbar" },
        h("strong", {}, task.name),
        h("span", { class: "group" }, toolButtons),
        h("span", { class: "group" }, labelButtons),
        h(
          "span",
          { class: "group" },
          undoBtn,
          redoBtn,
          h("button", { title: "Zoom in (+)", onclick: () => editor.zoom(1.25) }, "+"),
          h("button", { title: "Zoom out (-)", onclick: () => editor.zoom(0.8) }, "−"),
          h("button", { title: "Fit (0)", onclick: () => editor.fit() }, "fit"),
        ),
        statusEl,
      ),
      h(
        "div",
        { class: "workspace" },
        h("div", { class: "canvas-wrap" }, canvas),
        h(
          "aside",
          { class: "side" },
          info,
          task.kinds.includes("label") ? h("section", {}, h("h3", {}, "Image labels"), imageLabels) : null,
          h("section", {}, h("h3", {}, "Shapes"), shapeList),
          task.show_proposals ? h("section", {}, h("h3", {}, "Proposals"), proposalList) : null,
          h(
            "div",
            { class: "actions" },
            h("button", { id: "submit-btn", class: "primary", title: "Finish this image (Ctrl+Enter)", onclick: () => submit() }, "Submit"),
            h("button", { id: "skip-btn", title: "Skip: someone else may take it", onclick: () => skip() }, "Skip"),
            h("button", { id: "junk-btn", title: "Junk: the image is unusable", onclick: () => junk() }, "Junk"),
          ),
          h("p", { class: "muted small" }, instructionsText(task)),
        ),
      ),
    ),
  );

  const editor = new Editor(canvas, {
    labels,
    labelColor,
    onChange: (next) => change(next, session ? session.rejected : []),
    onSelect: () => renderLists(),
  });

  function instructionsText(t) {
    return t.instructions || "Keys: 1-9 label, V select, B box, P point, G polygon, L line, Del delete, Ctrl+Z / Ctrl+Y undo / redo, wheel zoom, Space+drag pan.";
  }

  function setTool(id) {
    editor.setTool(id);
    for (const b of toolButtons) b.classList.toggle("active", b.dataset.tool === id);
  }

  function chooseLabel(id) {
    currentLabel = id;
    editor.label = id;
    for (const b of labelButtons) b.classList.toggle("active", Number(b.dataset.label) === id);
    if (editor.selected !== null) editor.relabelSelected(id);
  }

  function setStatus(state, detail) {
    statusEl.dataset.state = state;
    let text = STATUS_TEXT[state] ?? state;
    if (state === "offline" && session) text += ` (${session.saver.queued} pending)`;
    if (detail && (state === "invalid" || state === "conflict")) text += `: ${detail}`;
    statusEl.textContent = text;
  }

  // -- state changes (each one undoable and saved at once) --------------------------------
  function change(shapes, rejected, { record = true } = {}) {
    if (!session) return;
    if (record) {
      session.undo.push({ shapes: session.shapes, rejected: session.rejected });
      if (session.undo.length > 500) session.undo.shift();
      session.redo = [];
    }
    session.shapes = shapes;
    session.rejected = rejected;
    persist();
    render();
  }

  function persist() {
    session.revision = Math.max(session.revision + 1, Date.now());
    session.saver.save({ shapes: session.shapes.map(stripShape), rejected: session.rejected, revision: session.revision });
  }

  function undo() {
    if (!session || !session.undo.length) return;
    session.redo.push({ shapes: session.shapes, rejected: session.rejected });
    const prev = session.undo.pop();
    editor.select(null);
    change(prev.shapes, prev.rejected, { record: false });
  }

  function redo() {
    if (!session || !session.redo.length) return;
    session.undo.push({ shapes: session.shapes, rejected: session.rejected });
    const next = session.redo.pop();
    change(next.shapes, next.rejected, { record: false });
  }

  function openProposals() {
    if (!session) return [];
    const used = new Set(session.shapes.map((s) => s.proposal).filter(Boolean));
    const rejected = new Set(session.rejected);
    return session.proposals.filter((p) => !used.has(p.ref) && !rejected.has(p.ref));
  }

  function accept(p) {
    const shape = stripShape({ ...p, proposal: p.ref });
    change([...session.shapes, shape], session.rejected);
  }

  function reject(p) {
    change(session.shapes, [...session.rejected, p.ref]);
  }

  // -- rendering ------------------------------------------------------------------------------
  function render() {
    editor.setShapes(session ? session.shapes : []);
    editor.setProposals(openProposals());
    renderLists();
  }

  function renderLists() {
    clear(shapeList);
    if (!session) return;
    session.shapes.forEach((s, i) => {
      if (s.kind === "label") return;
      const row = h(
        "li",
        { class: `shape-row${i === editor.selected ? " selected" : ""}`, dataset: { kind: s.kind, index: i }, onclick: () => editor.select(i) },
        h("span", { class: "swatch", dataset: { color: labelColor(s.label) } }),
        `${s.kind} · ${names.get(s.label) || "no label"}`,
        s.confidence != null ? ` (${Math.round(s.confidence * 100)}%)` : "",
        h("button", { class: "small", title: "Delete", onclick: (e) => { e.stopPropagation(); change(session.shapes.filter((_, k) => k !== i), session.rejected); } }, "×"),
      );
      shapeList.append(row);
    });
    clear(proposalList);
    for (const p of openProposals()) {
      proposalList.append(
        h(
          "li",
          { class: "proposal-row", dataset: { ref: p.ref } },
          h("span", { class: "swatch", dataset: { color: labelColor(p.label) } }),
          `${p.kind} · ${p.label_name || "no label"} · ${p.confidence != null ? Math.round(p.confidence * 100) + "%" : "?"}`,
          h("button", { class: "small accept", onclick: () => accept(p) }, "accept"),
          h("button", { class: "small reject", onclick: () => reject(p) }, "reject"),
        ),
      );
    }
    clear(imageLabels);
    for (const l of labels) {
      const on = session.shapes.some((s) => s.kind === "label" && s.label === l.id);
      imageLabels.append(
        h(
          "label",
          { class: "check" },
          h("input", {
            type: "checkbox",
            checked: on,
            onchange: (e) => {
              const rest = session.shapes.filter((s) => !(s.kind === "label" && s.label === l.id));
              change(e.target.checked ? [...rest, { kind: "label", label: l.id }] : rest, session.rejected);
            },
          }),
          l.name,
        ),
      );
    }
    paintSwatches(root);
    undoBtn.disabled = !session.undo.length;
    redoBtn.disabled = !session.redo.length;
  }

  // -- items ------------------------------------------------------------------------------------
  async function loadNext() {
    closeItem();
    let payload;
    try {
      payload = await api("POST", `/api/tasks/${taskId}/next`);
    } catch (err) {
      toast(err.message, "error");
      return;
    }
    if (!payload) {
      info.replaceChildren(h("p", { id: "task-finished", class: "done" }, "Nothing left to annotate in this task."));
      editor.setImage(null);
      editor.draw();
      setStatus("idle");
      return;
    }
    openItem(payload);
  }

  function openItem(payload) {
    const server = payload.draft || null;
    const local = DraftSaver.loadLocal(payload.item.id);
    const newest = local && (!server || (local.revision || 0) > (server.revision || 0)) ? local : server;
    session = {
      item: payload.item,
      image: payload.image,
      proposals: payload.proposals || [],
      shapes: newest ? newest.shapes || [] : [],
      rejected: newest ? newest.rejected || [] : [],
      revision: newest ? newest.revision || 0 : 0,
      undo: [],
      redo: [],
      opened: Date.now(),
      saver: new DraftSaver(payload.item.id, setStatus),
    };
    if (newest && newest === local && (!server || local.revision > (server.revision || 0))) {
      session.saver.save(local); // the browser has work the server has not seen yet
    } else {
      setStatus(server ? "saved" : "idle");
    }
    info.replaceChildren(
      h("p", {}, h("strong", {}, payload.image.name), ` · ${payload.image.width}×${payload.image.height}`),
      h("p", { class: "muted small", id: "item-id", dataset: { item: payload.item.id } }, `item ${payload.item.id} · priority ${payload.item.priority}`),
    );
    const img = new Image();
    img.onload = () => {
      editor.setImage(img);
      render();
    };
    img.onerror = () => toast("the image could not be loaded", "error");
    img.src = payload.image.url;
    render();
  }

  function closeItem() {
    if (session) session.saver.stop();
    session = null;
  }

  async function finish(path, body, message) {
    if (!session) return;
    const s = session;
    try {
      await api("POST", `/api/items/${s.item.id}/${path}`, body);
    } catch (err) {
      toast(`${message} failed: ${err.message}`, "error");
      return;
    }
    s.saver.stop();
    s.saver.clearLocal();
    toast(`${message}: item ${s.item.id}`);
    await loadNext();
  }

  function spent() {
    return session ? Math.round((Date.now() - session.opened) / 100) / 10 : null;
  }

  function submit() {
    if (!session) return;
    return finish("submit", { shapes: session.shapes.map(stripShape), time_spent: spent() }, "Submitted");
  }

  async function skip() {
    if (!session) return;
    await session.saver.flush(3000);
    return finish("skip", undefined, "Skipped");
  }

  function junk() {
    if (!session) return;
    return finish("junk", { time_spent: spent() }, "Marked as junk");
  }

  // -- keyboard -----------------------------------------------------------------------------------
  function onKey(e) {
    if (e.target.tagName === "INPUT" || e.target.tagName === "TEXTAREA") return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z") {
      e.preventDefault();
      return e.shiftKey ? redo() : undo();
    }
    if ((e.ctrlKey || e.metaKey) && key === "y") {
      e.preventDefault();
      return redo();
    }
    if ((e.ctrlKey || e.metaKey) && key === "enter") {
      e.preventDefault();
      return submit();
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[1-9]$/.test(e.key)) {
      const l = labels[Number(e.key) - 1];
      if (l) chooseLabel(l.id);
      return;
    }
    if (key === " ") {
      editor.spaceDown = true;
      e.preventDefault();
      return;
    }
    const tool = TOOLS.find((t) => t.key === key && toolButtons.some((b) => b.dataset.tool === t.id));
    if (tool) return setTool(tool.id);
    if (key === "enter") return editor.finishDrawing();
    if (key === "escape") return editor.cancel();
    if (key === "delete" || key === "backspace") {
      e.preventDefault();
      return editor.deleteSelected();
    }
    if (key === "+" || key === "=") return editor.zoom(1.25);
    if (key === "-") return editor.zoom(0.8);
    if (key === "0") return editor.fit();
  }

  function onKeyUp(e) {
    if (e.key === " ") editor.spaceDown = false;
  }

  window.addEventListener("keydown", onKey);
  window.addEventListener("keyup", onKeyUp);
  setTool(task.kinds.includes("bbox") ? "box" : toolButtons.length > 2 ? toolButtons[2].dataset.tool : "select");
  if (currentLabel !== null) chooseLabel(currentLabel);
  await loadNext();

  // cleanup when the page is left
  return () => {
    window.removeEventListener("keydown", onKey);
    window.removeEventListener("keyup", onKeyUp);
    editor.unbind();
    editor.destroy();
    if (session) session.saver.stop();
  };
}

// Colour swatches get their colour through the CSSOM (the CSP forbids inline style text).
export function paintSwatches(root) {
  for (const el of root.querySelectorAll(".swatch[data-color]")) el.style.background = el.dataset.color;
}
