// Talking to the annoloop API: JSON requests with the session cookie, errors as ApiError,
// the chosen project (every project-scoped call goes to /api/projects/NAME/...), and
// DraftSaver, which saves an item's work after every change and never loses it.

// -- the chosen project ------------------------------------------------------------------------
// null = the home project (/api/...). The choice is kept in localStorage across reloads.
const PROJECT_KEY = "annoloop.project";
// Server-wide routes (accounts, the project list): the same whatever project is chosen.
const SERVER_WIDE = /^\/api\/(login|logout|tokens|users|projects)(\/|\?|$)/;
let project = readProject();

function readProject() {
  try {
    return localStorage.getItem(PROJECT_KEY) || null;
  } catch {
    return null;
  }
}

export function currentProject() {
  return project;
}

// Choose the project the UI works in (null: the home project) and remember it.
export function setProject(name) {
  project = name || null;
  try {
    if (project) localStorage.setItem(PROJECT_KEY, project);
    else localStorage.removeItem(PROJECT_KEY);
  } catch {
    // storage disabled: the choice lasts until the page is reloaded
  }
}

// The URL of an API path in the chosen project: "/api/images/3/file" becomes
// "/api/projects/NAME/images/3/file". URLs the server made (already scoped) stay as they are.
export function apiPath(path) {
  if (!project || !path.startsWith("/api/") || SERVER_WIDE.test(path)) return path;
  return `/api/projects/${encodeURIComponent(project)}${path.slice(4)}`;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(errorMessage(status, body));
    this.status = status;
    this.body = body;
  }
}

function errorMessage(status, body) {
  if (!body) return `HTTP ${status}`;
  let detail = body.detail;
  if (Array.isArray(detail)) {
    detail = detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  const where = body.where && !Array.isArray(body.detail) ? `${body.where}: ` : "";
  return `${where}${detail || "HTTP " + status}`;
}

// One API call. `body` is JSON (or FormData for uploads). A 401 tells the app to show the
// login page. Network failures throw ApiError with status 0.
export async function api(method, path, body, { raw = false } = {}) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body instanceof FormData) {
    opts.body = body;
  } else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(apiPath(path), opts);
  } catch (err) {
    throw new ApiError(0, { detail: `network error: ${err.message}` });
  }
  if (!response.ok) {
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = { detail: response.statusText };
    }
    if (response.status === 401 && path !== "/api/login") {
      window.dispatchEvent(new CustomEvent("annoloop:unauthorized"));
    }
    throw new ApiError(response.status, data);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

// Saves the whole current work of one item after every change:
// - first into localStorage (survives a reload, a crash or a network outage),
// - then to the server (PUT /api/items/ID/draft), one request at a time; while one is in
//   flight newer changes collapse into the next request, and a failed request is retried
//   with backoff (network errors and 5xx) until it gets through.
// Every draft carries a revision that only grows, so the server never lets an older
// retry overwrite a newer draft.
export class DraftSaver {
  constructor(itemId, onStatus) {
    this.itemId = itemId;
    this.onStatus = onStatus || (() => {});
    this.pending = null;
    this.inflight = null;
    this.delay = 500;
    this.timer = null;
    this.stopped = false;
    this.onOnline = () => this.pump();
    window.addEventListener("online", this.onOnline);
  }

  // Item ids repeat across projects: a draft is kept per project (the home keeps the old key).
  static key(itemId) {
    return project ? `annoloop.draft.${project}.${itemId}` : `annoloop.draft.${itemId}`;
  }

  static loadLocal(itemId) {
    try {
      const text = localStorage.getItem(DraftSaver.key(itemId));
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  }

  get queued() {
    return (this.pending ? 1 : 0) + (this.inflight ? 1 : 0);
  }

  save(draft) {
    try {
      localStorage.setItem(DraftSaver.key(this.itemId), JSON.stringify(draft));
    } catch {
      // storage full or disabled: the server copy still gets saved
    }
    this.pending = draft;
    this.pump();
  }

  pump() {
    if (this.stopped || this.inflight || !this.pending) return;
    clearTimeout(this.timer);
    const draft = this.pending;
    this.pending = null;
    this.onStatus("saving");
    this.inflight = api("PUT", `/api/items/${this.itemId}/draft`, draft)
      .then(() => {
        this.delay = 500;
        this.inflight = null;
        this.onStatus(this.pending ? "saving" : "saved");
        this.pump();
      })
      .catch((err) => {
        this.inflight = null;
        if (err.status === 422) {
          this.onStatus("invalid", err.message);
          return;
        }
        if (err.status === 409 || err.status === 403 || err.status === 404) {
          this.onStatus("conflict", err.message);
          return;
        }
        if (!this.pending) this.pending = draft; // keep the newest for the retry
        this.onStatus("offline", err.message);
        this.timer = setTimeout(() => this.pump(), this.delay);
        this.delay = Math.min(this.delay * 2, 10000);
      });
  }

  // Wait until everything queued has reached the server (or `ms` passed).
  async flush(ms = 5000) {
    const end = Date.now() + ms;
    while ((this.pending || this.inflight) && Date.now() < end) {
      if (this.inflight) {
        await Promise.race([this.inflight, new Promise((r) => setTimeout(r, 200))]);
      } else {
        this.pump();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return !(this.pending || this.inflight);
  }

  clearLocal() {
    localStorage.removeItem(DraftSaver.key(this.itemId));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this.onOnline);
  }
}
