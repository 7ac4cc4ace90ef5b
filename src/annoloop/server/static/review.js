// The review page: finished items of a task with their annotations; a reviewer deletes wrong
// shapes, then accepts the item or rejects it (the image goes back into the task).

import { api, apiPath } from "./api.js";
import { paintSwatches } from "./annotate.js";
import { Editor } from "./editor.js";
import { clear, fmtTime, h, toast } from "./ui.js";

export async function reviewPage(root, app, taskId) {
  const task = await api("GET", `/api/tasks/${taskId}`);
  const labels = await api("GET", "/api/labels?include_retired=true");
  const colors = new Map(labels.map((l) => [l.id, l.color || "#3b7dd8"]));
  const labelColor = (id) => colors.get(id) || "#e0e0e0";
  let offset = 0;
  const pageSize = 50;

  const list = h("ul", { class: "review-list", id: "review-list" });
  const canvas = h("canvas", { id: "review-canvas" });
  const detail = h("div", { class: "review-detail" });
  const pager = h("div", { class: "pager" });
  clear(root).append(
    h("h2", {}, `Review · ${task.name}`),
    h(
      "div",
      { class: "review" },
      h("div", { class: "review-side" }, list, pager),
      h("div", { class: "review-main" }, h("div", { class: "canvas-wrap small-wrap" }, canvas), detail),
    ),
  );
  const editor = new Editor(canvas, { readOnly: true, labelColor, onSelect: () => {} });
  editor.setTool("pan");

  async function loadList() {
    const page = await api("GET", `/api/tasks/${taskId}/items?state=done&state=junk&offset=${offset}&limit=${pageSize}`);
    clear(list);
    for (const item of page.items) {
      const verdict = item.review ? item.review.verdict : "unreviewed";
      list.append(
        h(
          "li",
          { class: `review-row ${verdict}`, dataset: { item: item.id }, onclick: () => openItem(item.id) },
          h("img", { src: apiPath(`/api/images/${item.image_id}/thumb?size=64`), alt: "", loading: "lazy" }),
          h("span", {}, `#${item.id} · ${item.state} · ${item.locked_by || ""}`),
          h("span", { class: "muted small" }, ` ${verdict} · ${fmtTime(item.finished_at)}`),
        ),
      );
    }
    clear(pager).append(
      h("button", { disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - pageSize); loadList(); } }, "‹ newer"),
      h("span", {}, ` ${page.total ? offset + 1 : 0}-${Math.min(offset + pageSize, page.total)} of ${page.total} `),
      h("button", { disabled: offset + pageSize >= page.total, onclick: () => { offset += pageSize; loadList(); } }, "older ›"),
    );
  }

  async function openItem(itemId) {
    const payload = await api("GET", `/api/items/${itemId}`);
    const img = new Image();
    img.onload = () => {
      editor.setImage(img);
      editor.setShapes(payload.annotations);
    };
    img.src = payload.image.url;
    const rows = payload.annotations.map((a) =>
      h(
        "li",
        { class: "shape-row" },
        h("span", { class: "swatch", dataset: { color: labelColor(a.label) } }),
        `${a.kind} · ${a.label_name || "no label"} · ${a.author || ""}`,
        h(
          "button",
          {
            class: "small",
            title: "Delete this annotation",
            onclick: async () => {
              await api("DELETE", `/api/annotations/${a.id}`);
              openItem(itemId);
            },
          },
          "×",
        ),
      ),
    );
    const verdict = payload.review ? `${payload.review.verdict} by ${payload.review.by}` : "not reviewed";
    clear(detail).append(
      h("p", {}, h("strong", {}, payload.image.name), ` · item ${itemId} · ${payload.item.state} · ${verdict}`),
      h("ol", { class: "shape-list" }, rows),
      h(
        "div",
        { class: "actions" },
        h("button", { class: "primary", id: "accept-btn", onclick: () => review(itemId, "accept") }, "Accept"),
        h("button", { id: "reject-btn", onclick: () => review(itemId, "reject") }, "Reject (send back)"),
      ),
    );
    paintSwatches(detail);
  }

  async function review(itemId, verdict) {
    try {
      const out = await api("POST", `/api/items/${itemId}/review`, { verdict });
      toast(verdict === "reject" ? `sent back (${out.reopened} new item)` : "accepted");
      await loadList();
      await openItem(itemId);
    } catch (err) {
      toast(err.message, "error");
    }
  }

  await loadList();
  return () => {
    editor.unbind();
    editor.destroy();
  };
}
