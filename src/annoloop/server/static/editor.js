// The canvas editor: draws an image with its shapes and proposals, zoom and pan, and the
// drawing tools (select/move, box, point, polygon, line). Geometry is relative (0..1 of the
// image width and height), exactly as the API stores it. The editor does not save anything
// itself: every finished change goes to `onChange(newShapes)`.

const HANDLE = 6; // px, box corner handles
const HIT = 7; // px, how near a click must be to a point or a line

function clamp01(v) {
  return Math.min(1, Math.max(0, v));
}

function distToSegment(p, a, b) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = dx * dx + dy * dy;
  let t = len ? ((p.x - a.x) * dx + (p.y - a.y) * dy) / len : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(p.x - (a.x + t * dx), p.y - (a.y + t * dy));
}

function insideRing(p, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > p.y !== yj > p.y && p.x < ((xj - xi) * (p.y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export class Editor {
  constructor(canvas, { labels, readOnly = false, onChange, onSelect, labelColor } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.labels = labels || [];
    this.labelColor = labelColor || (() => "#3b7dd8");
    this.readOnly = readOnly;
    this.onChange = onChange || (() => {});
    this.onSelect = onSelect || (() => {});
    this.image = null;
    this.shapes = [];
    this.proposals = [];
    this.selected = null; // index into shapes
    this.tool = "box";
    this.label = null; // label id for new shapes
    this.view = { scale: 1, ox: 0, oy: 0 };
    this.drag = null;
    this.drawing = null; // points of a polygon or line being drawn
    this.cursor = null;
    this.spaceDown = false;
    this.bind();
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(canvas.parentElement);
  }

  destroy() {
    this.resizeObserver.disconnect();
  }

  // -- data ---------------------------------------------------------------------------------
  setImage(img) {
    this.image = img;
    this.resize();
    this.fit();
  }

  setShapes(shapes) {
    this.shapes = shapes;
    if (this.selected !== null && this.selected >= shapes.length) this.select(null);
    this.draw();
  }

  setProposals(proposals) {
    this.proposals = proposals;
    this.draw();
  }

  select(index) {
    this.selected = index;
    this.onSelect(index);
    this.draw();
  }

  setTool(tool) {
    this.tool = tool;
    this.drawing = null;
    this.canvas.dataset.tool = tool;
    this.draw();
  }

  // -- view ---------------------------------------------------------------------------------
  resize() {
    const parent = this.canvas.parentElement;
    const w = Math.max(100, parent.clientWidth);
    const hgt = Math.max(100, parent.clientHeight);
    if (this.canvas.width !== w || this.canvas.height !== hgt) {
      this.canvas.width = w;
      this.canvas.height = hgt;
      if (this.image && !this.userMoved) this.fit();
    }
    this.draw();
  }

  fit() {
    if (!this.image) return;
    const { width, height } = this.canvas;
    const scale = Math.min(width / this.image.naturalWidth, height / this.image.naturalHeight);
    this.view = {
      scale,
      ox: (width - this.image.naturalWidth * scale) / 2,
      oy: (height - this.image.naturalHeight * scale) / 2,
    };
    this.userMoved = false;
    this.draw();
  }

  zoom(factor, cx = this.canvas.width / 2, cy = this.canvas.height / 2) {
    const v = this.view;
    const scale = Math.min(40, Math.max(0.02, v.scale * factor));
    const k = scale / v.scale;
    this.view = { scale, ox: cx - (cx - v.ox) * k, oy: cy - (cy - v.oy) * k };
    this.userMoved = true;
    this.draw();
  }

  // screen px <-> relative image coordinates
  toRel(sx, sy) {
    const { scale, ox, oy } = this.view;
    const w = this.image.naturalWidth;
    const hgt = this.image.naturalHeight;
    return { x: (sx - ox) / scale / w, y: (sy - oy) / scale / hgt };
  }

  toScreen(x, y) {
    const { scale, ox, oy } = this.view;
    return { x: ox + x * this.image.naturalWidth * scale, y: oy + y * this.image.naturalHeight * scale };
  }

  // -- drawing ------------------------------------------------------------------------------
  draw() {
    const c = this.ctx;
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.image) return;
    const { scale, ox, oy } = this.view;
    c.imageSmoothingEnabled = scale < 2;
    c.drawImage(this.image, ox, oy, this.image.naturalWidth * scale, this.image.naturalHeight * scale);
    for (const p of this.proposals) this.drawShape(p, { proposal: true });
    this.shapes.forEach((s, i) => this.drawShape(s, { selected: i === this.selected }));
    this.drawInProgress();
  }

  drawShape(s, { selected = false, proposal = false } = {}) {
    const c = this.ctx;
    const color = this.labelColor(s.label);
    c.save();
    c.lineWidth = selected ? 3 : 2;
    c.strokeStyle = color;
    c.fillStyle = color;
    if (proposal) c.setLineDash([6, 4]);
    let anchor = null;
    if (s.kind === "bbox") {
      const [cx, cy, w, hh] = s.box;
      const a = this.toScreen(cx - w / 2, cy - hh / 2);
      const b = this.toScreen(cx + w / 2, cy + hh / 2);
      c.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
      if (selected) {
        for (const q of [a, b, { x: a.x, y: b.y }, { x: b.x, y: a.y }]) {
          c.fillRect(q.x - HANDLE / 2, q.y - HANDLE / 2, HANDLE, HANDLE);
        }
      }
      anchor = a;
    } else if (s.kind === "point") {
      const p = this.toScreen(s.point[0], s.point[1]);
      c.beginPath();
      c.arc(p.x, p.y, selected ? 7 : 5, 0, Math.PI * 2);
      c.globalAlpha = proposal ? 0.4 : 0.85;
      c.fill();
      c.globalAlpha = 1;
      c.strokeStyle = "#fff";
      c.lineWidth = 1.5;
      c.stroke();
      anchor = { x: p.x + 6, y: p.y - 6 };
    } else if (s.kind === "line" || s.kind === "polygon") {
      const rings = s.kind === "line" ? [s.line] : s.polygon.flat();
      for (const ring of rings) {
        c.beginPath();
        ring.forEach(([x, y], k) => {
          const p = this.toScreen(x, y);
          if (k === 0) c.moveTo(p.x, p.y);
          else c.lineTo(p.x, p.y);
        });
        if (s.kind === "polygon") {
          c.closePath();
          c.globalAlpha = 0.15;
          c.fill();
          c.globalAlpha = 1;
        }
        c.stroke();
        if (!anchor && ring.length) anchor = this.toScreen(ring[0][0], ring[0][1]);
      }
    }
    if (proposal && anchor && s.confidence !== null && s.confidence !== undefined) {
      c.setLineDash([]);
      c.font = "12px sans-serif";
      const text = `${s.label_name || ""} ${(s.confidence * 100).toFixed(0)}%`;
      c.fillStyle = "rgba(0,0,0,0.6)";
      c.fillRect(anchor.x, anchor.y - 16, c.measureText(text).width + 6, 15);
      c.fillStyle = "#fff";
      c.fillText(text, anchor.x + 3, anchor.y - 4);
    }
    c.restore();
  }

  drawInProgress() {
    const c = this.ctx;
    c.save();
    c.strokeStyle = this.labelColor(this.label);
    c.lineWidth = 2;
    c.setLineDash([4, 3]);
    if (this.drag && this.drag.mode === "newbox" && this.cursor) {
      const a = this.toScreen(this.drag.start.x, this.drag.start.y);
      const b = this.toScreen(this.cursor.x, this.cursor.y);
      c.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
    }
    if (this.drawing && this.drawing.length) {
      c.beginPath();
      this.drawing.forEach(([x, y], k) => {
        const p = this.toScreen(x, y);
        if (k === 0) c.moveTo(p.x, p.y);
        else c.lineTo(p.x, p.y);
      });
      if (this.cursor) {
        const p = this.toScreen(this.cursor.x, this.cursor.y);
        c.lineTo(p.x, p.y);
      }
      c.stroke();
    }
    c.restore();
  }

  // -- hit testing ----------------------------------------------------------------------------
  hit(sx, sy) {
    const p = { x: sx, y: sy };
    for (let i = this.shapes.length - 1; i >= 0; i--) {
      const s = this.shapes[i];
      if (s.kind === "bbox") {
        const [cx, cy, w, hh] = s.box;
        const a = this.toScreen(cx - w / 2, cy - hh / 2);
        const b = this.toScreen(cx + w / 2, cy + hh / 2);
        if (sx >= a.x - HIT && sx <= b.x + HIT && sy >= a.y - HIT && sy <= b.y + HIT) return i;
      } else if (s.kind === "point") {
        const q = this.toScreen(s.point[0], s.point[1]);
        if (Math.hypot(q.x - sx, q.y - sy) <= HIT + 3) return i;
      } else if (s.kind === "line") {
        const pts = s.line.map(([x, y]) => this.toScreen(x, y));
        for (let k = 1; k < pts.length; k++) if (distToSegment(p, pts[k - 1], pts[k]) <= HIT) return i;
      } else if (s.kind === "polygon") {
        const rel = this.toRel(sx, sy);
        for (const poly of s.polygon) if (insideRing(rel, poly[0])) return i;
      }
    }
    return null;
  }

  boxCorner(index, sx, sy) {
    const s = this.shapes[index];
    if (!s || s.kind !== "bbox") return null;
    const [cx, cy, w, hh] = s.box;
    const a = this.toScreen(cx - w / 2, cy - hh / 2);
    const b = this.toScreen(cx + w / 2, cy + hh / 2);
    const corners = { nw: [a.x, a.y], ne: [b.x, a.y], sw: [a.x, b.y], se: [b.x, b.y] };
    for (const [name, [x, y]] of Object.entries(corners)) {
      if (Math.abs(x - sx) <= HANDLE + 2 && Math.abs(y - sy) <= HANDLE + 2) return name;
    }
    return null;
  }

  // -- input ----------------------------------------------------------------------------------
  bind() {
    const cv = this.canvas;
    cv.addEventListener("mousedown", (e) => this.mouseDown(e));
    window.addEventListener("mousemove", (this._move = (e) => this.mouseMove(e)));
    window.addEventListener("mouseup", (this._up = (e) => this.mouseUp(e)));
    cv.addEventListener("dblclick", (e) => {
      e.preventDefault();
      this.finishDrawing();
    });
    cv.addEventListener("contextmenu", (e) => e.preventDefault());
    cv.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const r = cv.getBoundingClientRect();
        this.zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
      },
      { passive: false },
    );
  }

  unbind() {
    window.removeEventListener("mousemove", this._move);
    window.removeEventListener("mouseup", this._up);
  }

  local(e) {
    const r = this.canvas.getBoundingClientRect();
    return { sx: e.clientX - r.left, sy: e.clientY - r.top };
  }

  mouseDown(e) {
    if (!this.image) return;
    const { sx, sy } = this.local(e);
    const rel = this.toRel(sx, sy);
    if (e.button === 1 || e.button === 2 || this.spaceDown || this.tool === "pan") {
      this.drag = { mode: "pan", sx, sy, ox: this.view.ox, oy: this.view.oy };
      return;
    }
    if (this.readOnly) {
      this.select(this.hit(sx, sy));
      return;
    }
    if (this.tool === "select") {
      if (this.selected !== null) {
        const corner = this.boxCorner(this.selected, sx, sy);
        if (corner) {
          this.drag = { mode: "resize", corner, index: this.selected, start: rel, orig: structuredClone(this.shapes[this.selected]) };
          return;
        }
      }
      const index = this.hit(sx, sy);
      this.select(index);
      if (index !== null) {
        this.drag = { mode: "move", index, start: rel, orig: structuredClone(this.shapes[index]), moved: false };
      } else {
        this.drag = { mode: "pan", sx, sy, ox: this.view.ox, oy: this.view.oy };
      }
      return;
    }
    if (rel.x < 0 || rel.y < 0 || rel.x > 1 || rel.y > 1) return; // outside the image
    if (this.tool === "box") {
      this.drag = { mode: "newbox", start: rel };
      this.cursor = rel;
    } else if (this.tool === "point") {
      this.commit([...this.shapes, { kind: "point", label: this.label, point: [rel.x, rel.y] }]);
    } else if (this.tool === "polygon" || this.tool === "line") {
      if (e.detail > 1) return; // a double click's second press: its dblclick ends the shape
      this.drawing = this.drawing || [];
      this.drawing.push([rel.x, rel.y]);
      this.draw();
    }
  }

  mouseMove(e) {
    if (!this.image) return;
    const { sx, sy } = this.local(e);
    const rel = this.toRel(sx, sy);
    this.cursor = { x: clamp01(rel.x), y: clamp01(rel.y) };
    const d = this.drag;
    if (!d) {
      if (this.drawing) this.draw();
      return;
    }
    if (d.mode === "pan") {
      this.view = { ...this.view, ox: d.ox + sx - d.sx, oy: d.oy + sy - d.sy };
      this.userMoved = true;
    } else if (d.mode === "move") {
      const dx = rel.x - d.start.x;
      const dy = rel.y - d.start.y;
      d.moved = d.moved || Math.abs(dx) + Math.abs(dy) > 0.002;
      this.shapes[d.index] = moved(d.orig, dx, dy);
    } else if (d.mode === "resize") {
      this.shapes[d.index] = resized(d.orig, d.corner, this.cursor);
    }
    this.draw();
  }

  mouseUp() {
    const d = this.drag;
    this.drag = null;
    if (!d) return;
    if (d.mode === "newbox" && this.cursor) {
      const x1 = Math.min(d.start.x, this.cursor.x);
      const x2 = Math.max(d.start.x, this.cursor.x);
      const y1 = Math.min(d.start.y, this.cursor.y);
      const y2 = Math.max(d.start.y, this.cursor.y);
      const big = (x2 - x1) * this.image.naturalWidth * this.view.scale > 3 && (y2 - y1) * this.image.naturalHeight * this.view.scale > 3;
      if (big) {
        const box = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1];
        this.commit([...this.shapes, { kind: "bbox", label: this.label, box }]);
      } else {
        this.draw();
      }
    } else if (d.mode === "move" || d.mode === "resize") {
      if (d.mode === "move" && !d.moved) {
        this.shapes[d.index] = d.orig;
        this.draw();
        return;
      }
      const changed = this.shapes.slice();
      const current = changed[d.index];
      changed[d.index] = d.orig; // the change is reported as a whole, for undo
      this.shapes = changed;
      const next = changed.slice();
      next[d.index] = current;
      this.commit(next);
    }
  }

  finishDrawing() {
    if (!this.drawing) return false;
    const pts = this.drawing;
    this.drawing = null;
    if (this.tool === "polygon" && pts.length >= 3) {
      this.commit([...this.shapes, { kind: "polygon", label: this.label, polygon: [[pts]] }]);
      return true;
    }
    if (this.tool === "line" && pts.length >= 2) {
      this.commit([...this.shapes, { kind: "line", label: this.label, line: pts }]);
      return true;
    }
    this.draw();
    return false;
  }

  cancel() {
    this.drawing = null;
    this.drag = null;
    this.select(null);
  }

  deleteSelected() {
    if (this.selected === null) return;
    const next = this.shapes.filter((_, i) => i !== this.selected);
    this.select(null);
    this.commit(next);
  }

  relabelSelected(label) {
    if (this.selected === null) return false;
    const next = this.shapes.slice();
    next[this.selected] = { ...next[this.selected], label };
    this.commit(next);
    return true;
  }

  commit(next) {
    this.onChange(next);
  }
}

function moved(s, dx, dy) {
  const c = structuredClone(s);
  if (c.kind === "bbox") {
    const [, , w, hh] = c.box;
    c.box[0] = Math.min(1 - w / 2, Math.max(w / 2, c.box[0] + dx));
    c.box[1] = Math.min(1 - hh / 2, Math.max(hh / 2, c.box[1] + dy));
  } else if (c.kind === "point") {
    c.point = [clamp01(c.point[0] + dx), clamp01(c.point[1] + dy)];
  } else if (c.kind === "line") {
    c.line = c.line.map(([x, y]) => [clamp01(x + dx), clamp01(y + dy)]);
  } else if (c.kind === "polygon") {
    c.polygon = c.polygon.map((poly) => poly.map((ring) => ring.map(([x, y]) => [clamp01(x + dx), clamp01(y + dy)])));
  }
  return c;
}

function resized(s, corner, p) {
  const c = structuredClone(s);
  const [cx, cy, w, hh] = s.box;
  let x1 = cx - w / 2;
  let y1 = cy - hh / 2;
  let x2 = cx + w / 2;
  let y2 = cy + hh / 2;
  if (corner.includes("w")) x1 = p.x;
  if (corner.includes("e")) x2 = p.x;
  if (corner.includes("n")) y1 = p.y;
  if (corner.includes("s")) y2 = p.y;
  const [a, b] = [Math.min(x1, x2), Math.max(x1, x2)];
  const [t, u] = [Math.min(y1, y2), Math.max(y1, y2)];
  c.box = [(a + b) / 2, (t + u) / 2, Math.max(b - a, 1e-4), Math.max(u - t, 1e-4)];
  return c;
}
