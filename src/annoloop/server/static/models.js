// The models page: registered models (train one), stored states (make current, run
// inference, optionally ordering a task's items), and the jobs with progress bars, refreshed
// every two seconds.

import { api } from "./api.js";
import { clear, fmtTime, h, progressBar, toast } from "./ui.js";

function metricsText(m) {
  if (!m || typeof m !== "object") return "";
  return Object.entries(m)
    .filter(([, v]) => typeof v === "number")
    .slice(0, 4)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(3)}`)
    .join(", ");
}

export async function modelsPage(root, app) {
  const [models, tasks] = await Promise.all([api("GET", "/api/models"), api("GET", "/api/tasks")]);
  const statesBox = h("div", { id: "model-states" });
  const jobsBox = h("div", { id: "model-jobs" });
  const options = h("textarea", { id: "train-options", rows: 3, cols: 50, placeholder: '{"epochs": 3}  (options as JSON; empty for defaults)' });
  const taskSelect = h("select", { id: "infer-task" }, h("option", { value: "" }, "(no task)"), tasks.map((t) => h("option", { value: t.id }, t.name)));

  async function train(name) {
    let opts = {};
    try {
      opts = options.value.trim() ? JSON.parse(options.value) : {};
    } catch (err) {
      toast(`options are not JSON: ${err.message}`, "error");
      return;
    }
    try {
      const out = await api("POST", `/api/models/${encodeURIComponent(name)}/train`, { options: opts });
      toast(`Training of ${name} queued${out.warnings.length ? ` (${out.warnings.join("; ")})` : ""}`);
      await refreshJobs();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async function infer(state) {
    const body = { state_id: state.id };
    if (taskSelect.value) body.task = Number(taskSelect.value);
    try {
      await api("POST", "/api/models/infer", body);
      toast(`Inference with ${state.model} v${state.version} queued`);
      await refreshJobs();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async function makeCurrent(state) {
    try {
      await api("POST", `/api/models/states/${state.id}/current`);
      await refreshStates();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async function refreshStates() {
    const states = await api("GET", "/api/models/states");
    clear(statesBox).append(
      states.length
        ? h(
            "table",
            { class: "states" },
            h("thead", {}, h("tr", {}, ["#", "Model", "Version", "Metrics", "Created", ""].map((t) => h("th", {}, t)))),
            h(
              "tbody",
              {},
              states.map((st) =>
                h(
                  "tr",
                  { dataset: { state: st.id } },
                  h("td", {}, st.id),
                  h("td", {}, st.model),
                  h("td", {}, `v${st.version}`, st.is_current ? h("span", { class: "state finished" }, " current") : ""),
                  h("td", {}, metricsText(st.metrics)),
                  h("td", {}, fmtTime(st.created_at)),
                  h(
                    "td",
                    {},
                    st.is_current ? "" : h("button", { class: "small", onclick: () => makeCurrent(st) }, "make current"),
                    h("button", { class: "small", onclick: () => infer(st) }, "infer"),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No trained states yet."),
    );
  }

  async function refreshJobs() {
    const jobs = (await api("GET", "/api/jobs")).filter((j) => ["train", "inference"].includes(j.kind));
    clear(jobsBox).append(
      jobs.length
        ? h(
            "table",
            { class: "jobs", id: "model-jobs-table" },
            h("thead", {}, h("tr", {}, ["#", "Kind", "Name", "State", "Progress", "Message"].map((t) => h("th", {}, t)))),
            h(
              "tbody",
              {},
              jobs.map((j) =>
                h(
                  "tr",
                  { class: `job ${j.state}` },
                  h("td", {}, j.id),
                  h("td", {}, j.kind),
                  h("td", {}, j.name),
                  h("td", {}, h("span", { class: `state ${j.state}` }, j.state)),
                  h("td", {}, progressBar(j.progress_done, j.progress_total, j.state)),
                  h("td", { class: j.error ? "error" : "" }, j.error || j.message || ""),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No training or inference jobs yet."),
    );
  }

  const modelRows = models.map((m) =>
    h(
      "tr",
      { dataset: { model: m.name } },
      h("td", {}, h("strong", {}, m.name)),
      h("td", { class: m.available ? "" : "error" }, m.available ? m.description || "" : m.error || "not available"),
      h("td", {}, m.available ? h("button", { class: "small", onclick: () => train(m.name) }, "train") : ""),
    ),
  );
  clear(root).append(
    h("h2", {}, "Models"),
    h("table", { class: "models", id: "models-table" }, h("tbody", {}, modelRows)),
    h("p", {}, options),
    h("h3", {}, "States"),
    h("p", {}, h("label", {}, "Inference orders the open items of ", taskSelect)),
    statesBox,
    h("h3", {}, "Training and inference jobs"),
    jobsBox,
  );
  await Promise.all([refreshStates(), refreshJobs()]);
  app.timers.push(
    setInterval(() => {
      refreshJobs().catch(() => {});
      refreshStates().catch(() => {});
    }, 2000),
  );
}
