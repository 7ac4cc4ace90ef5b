// The annoloop web UI: a hash router over a few pages. Pages: login, tasks (home), annotate,
// review, images, pipelines, models, statistics, jobs, users. Every call goes through /api with the session
// cookie set at login; the project switcher in the header sends the project-scoped ones to
// /api/projects/NAME/ (api.js) and remembers the choice.

import { annotatePage } from "./annotate.js";
import { api, apiPath, currentProject, setProject } from "./api.js";
import { modelsPage } from "./models.js";
import { pipePage, pipesPage } from "./pipes.js";
import { reviewPage } from "./review.js";
import { clear, fmtTime, h, progressBar, toast, view } from "./ui.js";

const app = { project: null, user: null, cleanup: null, timers: [] };

function isDesigner() {
  return app.user && (app.user.role === "designer" || app.user.role === "admin");
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// -- chrome ---------------------------------------------------------------------------------
// The project switcher: the caller's projects (GET /api/projects); choosing one reloads the
// project's info (the caller's role there) and shows its tasks.
async function renderProjects() {
  const select = document.getElementById("project-switch");
  const name = document.getElementById("project-name");
  if (!app.user) {
    select.hidden = true;
    clear(select);
    return;
  }
  let projects = [];
  try {
    projects = await api("GET", "/api/projects");
  } catch {
    projects = [];
  }
  clear(select).append(
    ...projects.map((p) =>
      h("option", { value: p.name, dataset: { home: p.home ? "1" : "" }, selected: app.project && p.name === app.project.name }, `${p.name} (${p.role})`),
    ),
  );
  select.hidden = projects.length < 2;
  name.hidden = !select.hidden;
  select.dataset.current = app.project ? app.project.name : "";
}

async function switchProject(name, isHome) {
  setProject(isHome ? null : name);
  app.project = await api("GET", "/api/project");
  app.user = app.project.user;
  renderNav();
  go("#/tasks");
  await renderProjects();
}

document.getElementById("project-switch").addEventListener("change", (e) => {
  const option = e.target.selectedOptions[0];
  switchProject(option.value, option.dataset.home === "1").catch((err) => toast(err.message, "error"));
});

// The chosen project's info; a project the caller can no longer see (404) falls back to home.
async function loadProject() {
  try {
    return await api("GET", "/api/project");
  } catch (err) {
    if (err.status !== 404 || !currentProject()) throw err;
    setProject(null);
    return api("GET", "/api/project");
  }
}

function renderNav() {
  const nav = clear(document.getElementById("nav"));
  document.getElementById("project-name").textContent = app.project ? app.project.name : "";
  const who = clear(document.getElementById("whoami"));
  if (!app.user) return;
  const links = [["#/tasks", "Tasks"]];
  if (isDesigner()) links.push(["#/images", "Images"], ["#/pipes", "Pipelines"], ["#/models", "Models"], ["#/jobs", "Jobs"]);
  links.push(["#/stats", "Statistics"]);
  // Accounts are server-wide: managed from the home project (by its admins).
  if (app.user.role === "admin" && (!app.project || app.project.home)) links.push(["#/users", "Users"]);
  for (const [href, text] of links) nav.append(h("a", { href }, text));
  who.append(
    `${app.user.name} (${app.user.role}) `,
    h("button", { id: "logout", class: "small", onclick: logout }, "log out"),
  );
}

async function logout() {
  try {
    await api("POST", "/api/logout");
  } catch {
    // already logged out
  }
  app.user = null;
  renderNav();
  renderProjects();
  go("#/login");
}

// -- pages ------------------------------------------------------------------------------------
function loginPage(root) {
  const name = h("input", { id: "login-name", name: "name", autocomplete: "username", required: true });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error", id: "login-error" });
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = "";
        try {
          await api("POST", "/api/login", { name: name.value, password: password.value });
          app.project = await loadProject();
          app.user = app.project.user; // the role in the chosen project
          renderNav();
          go("#/tasks");
          renderProjects(); // not awaited: the page must not wait for the switcher
        } catch (err) {
          error.textContent = err.message;
        }
      },
    },
    h("h2", {}, "Log in"),
    h("label", {}, "User ", name),
    h("label", {}, "Password ", password),
    h("button", { class: "primary", type: "submit", id: "login-submit" }, "Log in"),
    error,
  );
  clear(root).append(form);
  name.focus();
}

async function tasksPage(root) {
  const tasks = await api("GET", "/api/tasks");
  const table = h(
    "table",
    { class: "tasks", id: "task-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Task"), h("th", {}, "Kinds"), h("th", {}, "Open"), h("th", {}, "Locked"), h("th", {}, "Done"), h("th", {}, "Junk"), h("th", {}, "Progress"), h("th", {}, ""))),
    h(
      "tbody",
      {},
      tasks.map((t) => {
        const total = Object.values(t.counts).reduce((a, b) => a + b, 0);
        const finished = t.counts.done + t.counts.junk;
        return h(
          "tr",
          { dataset: { task: t.id } },
          h("td", {}, t.name),
          h("td", {}, t.kinds.join(", ")),
          h("td", { class: "count-open" }, t.counts.open),
          h("td", { class: "count-locked" }, t.counts.locked),
          h("td", { class: "count-done" }, t.counts.done),
          h("td", { class: "count-junk" }, t.counts.junk),
          h("td", {}, progressBar(finished, total, "queued")),
          h(
            "td",
            {},
            h("a", { class: "button", href: `#/annotate/${t.id}` }, "annotate"),
            isDesigner() ? h("a", { class: "button", href: `#/review/${t.id}` }, "review") : null,
          ),
        );
      }),
    ),
  );
  clear(root).append(h("h2", {}, "Annotation tasks"), tasks.length ? table : h("p", { class: "muted" }, "No tasks yet."));
  if (isDesigner()) root.append(newTaskForm());
}

function newTaskForm() {
  const name = h("input", { name: "name", required: true, placeholder: "task name" });
  const kinds = ["bbox", "point", "polygon", "line", "label"].map((k) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", value: k, checked: k === "bbox" }), k),
  );
  const instructions = h("input", { name: "instructions", placeholder: "instructions (optional)" });
  const all = h("input", { type: "checkbox", checked: true });
  return h(
    "form",
    {
      class: "card",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const chosen = kinds.map((l) => l.firstChild).filter((i) => i.checked).map((i) => i.value);
          const task = await api("POST", "/api/tasks", { name: name.value, kinds: chosen, instructions: instructions.value });
          if (all.checked) await api("POST", `/api/tasks/${task.id}/requests`, { all_images: true });
          toast(`task ${task.name} created`);
          route();
        } catch (err) {
          toast(err.message, "error");
        }
      },
    },
    h("h3", {}, "New task"),
    name,
    " ",
    instructions,
    h("div", {}, kinds),
    h("label", { class: "check" }, all, "put every image into it"),
    h("button", { type: "submit" }, "Create"),
  );
}

async function imagesPage(root) {
  const page = await api("GET", "/api/images?limit=200");
  const input = h("input", { type: "file", multiple: true, accept: "image/*", id: "upload-input" });
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (e) => {
        e.preventDefault();
        const data = new FormData();
        for (const f of input.files) data.append("files", f);
        try {
          const out = await api("POST", "/api/images", data);
          toast(`${out.images.length} image(s) added`);
          route();
        } catch (err) {
          toast(err.message, "error");
        }
      },
    },
    h("h3", {}, "Upload images"),
    input,
    h("button", { type: "submit" }, "Upload"),
  );
  const grid = h(
    "div",
    { class: "thumbs" },
    page.items.map((im) =>
      h("figure", {}, h("img", { src: `${im.thumb}?size=128`, alt: im.name, loading: "lazy" }), h("figcaption", {}, `${im.name} ${im.width}×${im.height}`)),
    ),
  );
  clear(root).append(h("h2", {}, `Images (${page.total})`), form, grid);
}

async function statsPage(root) {
  const stats = await api("GET", "/api/stats");
  const img = h("img", { id: "stats-plot", class: "plot", alt: "statistics plot", src: apiPath(`/api/stats/plot.png?t=${Date.now()}`) });
  const rows = [
    ["images", stats.images],
    ["labels", stats.labels],
    ["annotations", stats.annotations],
    ["predictions", stats.predictions],
    ["tasks", stats.tasks],
    ["jobs", stats.jobs],
  ];
  clear(root).append(
    h("h2", {}, "Statistics"),
    h("table", { class: "counts", id: "stats-table" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))))),
    img,
  );
}

async function jobsPage(root) {
  const table = h("table", { class: "jobs", id: "jobs-table" });
  const log = h("pre", { class: "log", id: "job-log" });
  clear(root).append(h("h2", {}, "Jobs"), table, log);
  async function refresh() {
    const jobs = await api("GET", "/api/jobs");
    clear(table).append(
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Kind"), h("th", {}, "Name"), h("th", {}, "State"), h("th", {}, "Progress"), h("th", {}, "Message"), h("th", {}, "Started"))),
      h(
        "tbody",
        {},
        jobs.map((j) =>
          h(
            "tr",
            { class: `job ${j.state}`, onclick: () => showLog(j.id) },
            h("td", {}, j.id),
            h("td", {}, j.kind),
            h("td", {}, j.name),
            h("td", {}, j.state),
            h("td", {}, progressBar(j.progress_done, j.progress_total, j.state)),
            h("td", {}, j.error || j.message || ""),
            h("td", {}, fmtTime(j.started_at)),
          ),
        ),
      ),
    );
  }
  async function showLog(id) {
    const job = await api("GET", `/api/jobs/${id}`);
    log.textContent = job.log || "(no log)";
  }
  await refresh();
  app.timers.push(setInterval(() => refresh().catch(() => {}), 2000));
}

async function usersPage(root) {
  const users = await api("GET", "/api/users");
  const name = h("input", { name: "name", placeholder: "name", required: true });
  const password = h("input", { name: "password", type: "password", placeholder: "password (8+)", required: true });
  const role = h("select", {}, ["annotator", "designer", "admin"].map((r) => h("option", { value: r }, r)));
  clear(root).append(
    h("h2", {}, "Users"),
    h(
      "table",
      { class: "users" },
      h(
        "tbody",
        {},
        users.map((u) =>
          h(
            "tr",
            {},
            h("td", {}, u.name),
            h("td", {}, u.role),
            h(
              "td",
              {},
              u.name === app.user.name
                ? ""
                : h("button", { class: "small", onclick: async () => { try { await api("DELETE", `/api/users/${encodeURIComponent(u.name)}`); route(); } catch (err) { toast(err.message, "error"); } } }, "remove"),
            ),
          ),
        ),
      ),
    ),
    h(
      "form",
      {
        class: "card",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            await api("POST", "/api/users", { name: name.value, password: password.value, role: role.value });
            route();
          } catch (err) {
            toast(err.message, "error");
          }
        },
      },
      h("h3", {}, "Add a user"),
      name,
      password,
      role,
      h("button", { type: "submit" }, "Add"),
    ),
  );
}

// -- router -------------------------------------------------------------------------------------
const ROUTES = [
  [/^#\/tasks$/, tasksPage],
  [/^#\/annotate\/(\d+)$/, (root, id) => annotatePage(root, app, Number(id))],
  [/^#\/review\/(\d+)$/, (root, id) => reviewPage(root, app, Number(id))],
  [/^#\/images$/, imagesPage],
  [/^#\/stats$/, statsPage],
  [/^#\/jobs$/, jobsPage],
  [/^#\/pipes$/, (root) => pipesPage(root, app)],
  [/^#\/models$/, (root) => modelsPage(root, app)],
  [/^#\/pipes\/(\d+)$/, (root, id) => pipePage(root, app, Number(id))],
  [/^#\/users$/, usersPage],
];

async function route() {
  if (app.cleanup) {
    try {
      app.cleanup();
    } catch {
      // a page that failed half-way has little to clean
    }
    app.cleanup = null;
  }
  for (const t of app.timers) clearInterval(t);
  app.timers = [];
  const root = view();
  const hash = location.hash || "#/tasks";
  if (hash === "#/login" || !app.user) {
    loginPage(root);
    return;
  }
  for (const [pattern, page] of ROUTES) {
    const m = hash.match(pattern);
    if (m) {
      try {
        const cleanup = await page(root, ...m.slice(1));
        if (typeof cleanup === "function") app.cleanup = cleanup;
      } catch (err) {
        if (err.status !== 401) clear(root).append(h("p", { class: "error" }, err.message));
      }
      return;
    }
  }
  go("#/tasks");
}

window.addEventListener("annoloop:unauthorized", () => {
  app.user = null;
  renderNav();
  renderProjects();
  if (location.hash !== "#/login") go("#/login");
});
window.addEventListener("hashchange", route);

async function start() {
  try {
    app.project = await loadProject();
    app.user = app.project.user;
  } catch {
    app.user = null;
  }
  renderNav();
  if (app.user && location.hash === "#/login") location.hash = "#/tasks";
  route();
  renderProjects();
}

start();
