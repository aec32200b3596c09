// tasks.html: GET /tasks, newest first, filtered by status and pipeline, paged by cursor.
import { api, duration, el, ensureKey, statusBadge, when, wireKeyButton } from "./api.js";

const $ = (id) => document.getElementById(id);
let cursor = null; // cursor of the page shown (null: the newest)
let nextCursor = null;

function row(t) {
  return el(
    "tr",
    { "data-task": t.task_id },
    el("td", {}, el("a", { href: `/task.html?id=${encodeURIComponent(t.task_id)}`, class: "mono" },
      t.task_id.slice(0, 8))),
    el("td", {}, t.pipeline),
    el("td", {}, statusBadge(t.status)),
    el("td", { "data-priority": t.priority }, t.priority_name || "normal"),
    el("td", {}, when(t.created_at)),
    el("td", { class: "num" }, t.started_at ? duration(t.started_at, t.finished_at) : "–"),
    el("td", { class: "small" }, t.reason || ""),
  );
}

async function load() {
  const q = new URLSearchParams();
  for (const name of ["status", "pipeline", "limit"]) {
    if ($(name).value) q.set(name, $(name).value);
  }
  if (cursor) q.set("cursor", cursor);
  const err = $("list-error");
  err.hidden = true;
  try {
    const page = await api(`/tasks?${q}`);
    nextCursor = page.next_cursor;
    $("rows").replaceChildren(
      ...(page.tasks.length
        ? page.tasks.map(row)
        : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No tasks match."))]),
    );
  } catch (e) {
    err.textContent = `Cannot list tasks: ${e.message}`;
    err.hidden = false;
  }
  $("next").disabled = !nextCursor;
  $("first").disabled = !cursor;
}

async function main() {
  wireKeyButton();
  await ensureKey();
  // The pipeline filter offers what the API offers.
  try {
    const { pipelines } = await api("/pipelines");
    $("pipeline").append(...pipelines.map((p) => el("option", { value: p.name }, p.name)));
  } catch {
    /* the list below reports the problem */
  }
  // Filters may come in the address: tasks.html?status=error&pipeline=checksum&limit=10
  const params = new URLSearchParams(location.search);
  for (const name of ["status", "pipeline", "limit"]) {
    const value = params.get(name);
    if (!value) continue;
    if (![...$(name).options].some((o) => o.value === value)) $(name).append(el("option", {}, value));
    $(name).value = value;
  }
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    cursor = null;
    load();
  });
  for (const name of ["status", "pipeline", "limit"]) {
    $(name).addEventListener("change", () => $("filters").requestSubmit());
  }
  $("next").addEventListener("click", () => {
    cursor = nextCursor;
    load();
  });
  $("first").addEventListener("click", () => {
    cursor = null;
    load();
  });
  load();
}

main();
