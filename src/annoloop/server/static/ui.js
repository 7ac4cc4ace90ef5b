// Small DOM helpers shared by the pages (no framework, no build step).

// h("div", {class: "x", onclick: fn}, child, "text", ...) -> element
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : value);
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function view() {
  return document.getElementById("view");
}

let toastTimer = null;
export function toast(message, kind = "info") {
  let el = document.getElementById("toast");
  if (!el) {
    el = h("div", { id: "toast", role: "status" });
    document.body.append(el);
  }
  el.textContent = message;
  el.className = `toast ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.className = "toast hidden";
  }, 4000);
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString();
}

// A progress bar of done/total; without a total it is indeterminate while the work runs,
// full once it finished, and empty otherwise (queued, failed, cancelled).
export function progressBar(done, total, state = "running") {
  const ended = ["finished", "done"].includes(state);
  const bar = h("progress", { max: total || 1, value: total ? done : ended ? 1 : 0 });
  if (!total && ["running", "in_progress"].includes(state)) bar.removeAttribute("value");
  return h("span", { class: "progress" }, bar, h("span", {}, total ? ` ${done}/${total}` : ""));
}
