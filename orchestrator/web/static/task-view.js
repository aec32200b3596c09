// One task, live: status, times, inputs, and once done its result pictures and download links.
// Used by the new-task page (after upload) and by task.html?id=...

import { api, bytes, duration, el, statusBadge, TERMINAL, when } from "./api.js";

const POLL_MS = 1500;

function resultsSection(task) {
  const results = task.results || [];
  if (!results.length) return el("p", { class: "muted" }, "No results.");
  // Pictures first, the change map (volcal) as the large one; every result is downloadable.
  // The pipeline says which results are pictures (a GeoTIFF is image/tiff, but it is data).
  const images = results.filter((r) => r.picture);
  images.sort((a, b) => (b.name === "change_map.png") - (a.name === "change_map.png"));
  const figures = images.map((r, i) =>
    el(
      "figure",
      { class: i === 0 ? "main" : "" },
      el(
        "a",
        { href: r.url, target: "_blank", rel: "noopener" },
        el("img", { src: r.url, alt: `result ${r.name}`, "data-result": r.name, loading: "lazy" }),
      ),
      el("figcaption", {}, r.name),
    ),
  );
  const rows = results.map((r) =>
    el(
      "tr",
      {},
      el("td", {}, el("a", { href: r.url, download: r.name, "data-download": r.name }, r.name)),
      el("td", { class: "num" }, bytes(r.bytes)),
      el("td", { class: "mono small", title: r.sha256 }, `${r.sha256.slice(0, 16)}…`),
      el("td", { class: "small muted" }, r.content_type),
    ),
  );
  const report = results.find((r) => r.name === "report.json");
  return el(
    "div",
    {},
    report ? reportNumbers(report) : null,
    images.length ? el("div", { class: "figures" }, figures) : null,
    el(
      "table",
      { "aria-label": "result files" },
      el(
        "thead",
        {},
        el("tr", {}, el("th", {}, "file"), el("th", { class: "num" }, "size"),
          el("th", {}, "sha256"), el("th", {}, "type")),
      ),
      el("tbody", {}, rows),
    ),
    el("p", { class: "hint" }, "Download links are presigned and expire (1 h by default); " +
      "reload the page for fresh ones."),
  );
}

// The headline numbers of a report.json result (its top-level numbers, and the registration's
// RMSE), fetched from its presigned URL: the object store answers the page's origin (CORS).
function reportNumbers(report) {
  const list = el("dl", { class: "facts", id: "report-numbers", "aria-label": "report figures" });
  fetch(report.url)
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((doc) => {
      const rows = Object.entries(doc).filter(([, v]) => typeof v === "number");
      if (doc.registration && typeof doc.registration.rmse_m === "number") {
        rows.push(["registration_rmse_m", doc.registration.rmse_m]);
      }
      list.replaceChildren(
        ...rows.flatMap(([k, v]) => [
          el("dt", {}, k.replaceAll("_", " ")),
          el("dd", { "data-key": k }, v.toLocaleString("en", { maximumFractionDigits: 3 })),
        ]),
      );
      list.dataset.loaded = "true";
    })
    .catch((e) => {
      list.replaceChildren(el("dd", { class: "muted" }, `report.json could not be read: ${e.message}`));
    });
  return el("section", { "aria-label": "report" }, el("h3", {}, "Report"), list);
}

function inputsTable(task) {
  const rows = Object.entries(task.inputs).map(([slot, i]) =>
    el(
      "tr",
      {},
      el("td", {}, el("b", {}, slot), i.required ? "" : el("span", { class: "hint" }, " optional")),
      el("td", {}, i.filename || el("span", { class: "muted" }, "–")),
      el("td", { class: "num" },
        i.bytes_total ? `${bytes(i.bytes_received)} of ${bytes(i.bytes_total)}` : "–"),
      el("td", {}, i.done ? "uploaded" : i.state),
    ),
  );
  return el(
    "table",
    { "aria-label": "inputs" },
    el("thead", {}, el("tr", {}, el("th", {}, "input"), el("th", {}, "file"),
      el("th", { class: "num" }, "received"), el("th", {}, "state"))),
    el("tbody", {}, rows),
  );
}

export function renderTask(container, task, { onKill, onDelete } = {}) {
  const terminal = TERMINAL.has(task.status);
  const r = task.resources || {};
  const status = statusBadge(task.status);
  status.id = "task-status";
  const head = el(
    "div",
    { class: "task-head" },
    el("h2", {}, "Task ", el("code", {}, task.task_id), " ", status),
    el(
      "div",
      { class: "row" },
      terminal ? null : el("button", { class: "danger", type: "button", onclick: onKill }, "Kill task"),
      onDelete ? el("button", { class: "danger", type: "button", id: "delete-task", onclick: onDelete },
        "Delete task") : null,
    ),
  );
  const reason = task.reason
    ? el("p", { class: `msg ${task.status === "done" ? "info" : "error"}`, role: "alert" },
      task.reason)
    : null;
  const busy = !terminal
    ? el("p", { class: "msg info", role: "status" }, {
      waiting: "Waiting for the inputs to be uploaded.",
      pending: "All inputs are in: queued for a worker.",
      running: `Running for ${duration(task.started_at)}.`,
    }[task.status] || task.status)
    : null;
  const facts = el(
    "dl",
    { class: "kv" },
    el("dt", {}, "pipeline"), el("dd", {}, task.pipeline),
    el("dt", {}, "priority"), el("dd", { id: "task-priority" }, task.priority_name || "normal"),
    el("dt", {}, "created"), el("dd", {}, when(task.created_at)),
    el("dt", {}, "started"), el("dd", {}, when(task.started_at)),
    el("dt", {}, "finished"), el("dd", {}, when(task.finished_at)),
    el("dt", {}, "run time"), el("dd", {}, task.started_at ? duration(task.started_at, task.finished_at) : "–"),
    el("dt", {}, "limits"),
    el("dd", {}, `${r.cpus} CPU · ${bytes(r.memory_bytes)} · ${r.gpus} GPU · ${r.timeout_s} s`),
    task.worker_id ? [el("dt", {}, "worker"), el("dd", { class: "mono" }, task.worker_id)] : null,
    task.results_expire_at
      ? [el("dt", {}, "results kept until"), el("dd", {}, when(task.results_expire_at))] : null,
    task.results_removed_at
      ? [el("dt", {}, "results removed"), el("dd", {}, when(task.results_removed_at))] : null,
  );
  const parts = [head, reason, busy, facts, el("h3", { style: "margin-top:1rem" }, "Inputs"), inputsTable(task)];
  if (task.status === "done") {
    parts.push(el("h3", { style: "margin-top:1.2rem" }, "Results"), resultsSection(task));
  }
  container.replaceChildren(...parts.filter(Boolean)); // replaceChildren would print "null"
}

// Poll GET /query_task/{id} until the task ends; onUpdate sees every state.
export function watchTask(container, taskId, { onUpdate } = {}) {
  let timer = null;
  let stopped = false;
  const errorBox = el("p", { class: "msg error", role: "alert" });

  async function kill() {
    if (!confirm(`Kill task ${taskId}?`)) return;
    try {
      await api(`/kill_task/${taskId}`, { method: "POST" });
      tick();
    } catch (e) {
      errorBox.textContent = `Kill failed: ${e.message}`;
      container.prepend(errorBox);
    }
  }

  async function remove() {
    if (!confirm(`Delete task ${taskId} and all its data (uploads, results, logs)?`)) return;
    try {
      await api(`/tasks/${taskId}`, { method: "DELETE" });
      tick();
    } catch (e) {
      errorBox.textContent = `Delete failed: ${e.message}`;
      container.prepend(errorBox);
    }
  }

  async function tick() {
    clearTimeout(timer);
    if (stopped) return;
    let task;
    try {
      task = await api(`/query_task/${taskId}`);
    } catch (e) {
      if (e.status === 410) {
        // A tombstone: say when and why, and stop asking.
        container.replaceChildren(el("p", { class: "msg info", role: "status", id: "task-deleted" },
          `Task ${taskId} was deleted${e.body && e.body.deleted_at ? ` ${when(e.body.deleted_at)}` : ""}: ` +
          `${(e.body && e.body.reason) || "no reason given"}. Its uploads, results and logs are gone.`));
        return;
      }
      errorBox.textContent = `Cannot read the task: ${e.message}`;
      container.prepend(errorBox);
      if (e.status !== 404) timer = setTimeout(tick, POLL_MS * 2);
      return;
    }
    renderTask(container, task, { onKill: kill, onDelete: remove });
    if (onUpdate) onUpdate(task);
    if (!TERMINAL.has(task.status)) timer = setTimeout(tick, POLL_MS);
  }

  tick();
  return { refresh: tick, stop: () => { stopped = true; clearTimeout(timer); } };
}
