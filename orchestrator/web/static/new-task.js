// The new-task page: pick a pipeline, fill its parameters, choose (or drop) a file per input slot,
// create the task, upload every file with tus-js-client (pause/resume), start it, follow it.
// tus-js-client is the classic script /static/vendor/tus.min.js, loaded before this module (window.tus).

import { api, bytes, el, ensureKey, wireKeyButton } from "./api.js";
import { watchTask } from "./task-view.js";

const MiB = 1024 * 1024;
// Each PATCH carries at most this much: progress stays honest and a pause loses < 1 chunk.
const CHUNK_BYTES = 8 * MiB;
// The post-finish hook is asynchronous: the slot may show as filled a moment after the upload.
const START_RETRY_MS = 1000;
const START_RETRY_FOR_MS = 60000;

const $ = (id) => document.getElementById(id);
let pipelines = [];
let slots = {}; // slot name -> {spec, file, upload, state, ui}
let task = null; // the created task (create_task's answer)
// Slots whose interrupted upload (a reload, a closed tab) waits for its file to be chosen again.
const resuming = new Set();
// The task whose uploads are under way, kept across page loads: {task_id, pipeline, upload_urls,
// slots}. tus-js-client keeps each upload's URL under the file's fingerprint (name, type, size,
// modification time, endpoint), so the same file chosen again resumes where the server is.
const UNFINISHED = "orchestrator.unfinishedTask";

function showError(message) {
  const box = $("form-error");
  box.textContent = message;
  box.hidden = !message;
}

// --- pipeline and parameters -------------------------------------------------------------------

function fact(label, value) {
  return el("li", {}, `${label} `, el("b", {}, value));
}

function selectPipeline(name) {
  const p = pipelines.find((x) => x.name === name);
  $("pipeline-desc").textContent = p.description;
  const r = p.resources;
  $("pipeline-facts").replaceChildren(
    fact("inputs", `${Object.keys(p.inputs).length}`),
    fact("CPUs", `${r.cpus}`),
    fact("memory", bytes(r.memory_bytes)),
    fact("GPUs", `${r.gpus}`),
    fact("time limit", `${r.timeout_s} s`),
  );
  renderParams(p);
  renderSlots(p);
  updateSubmit();
}

function bounds(param) {
  const parts = [];
  if (param.minimum !== null) parts.push(`≥ ${param.minimum}`);
  if (param.maximum !== null) parts.push(`≤ ${param.maximum}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

function renderParams(p) {
  const entries = Object.entries(p.params);
  $("params-count").textContent = entries.length
    ? `${entries.length}, defaults filled in` : "none";
  $("params").replaceChildren(
    ...entries.map(([name, param]) => {
      const id = `param-${name}`;
      const hint = el("span", { class: "hint", id: `${id}-hint` },
        `${param.description}${bounds(param)} · default ${JSON.stringify(param.default)}`);
      let input;
      if (param.type === "bool") {
        input = el("input", { type: "checkbox", id, name, checked: param.default, "aria-describedby": `${id}-hint` });
        return el("div", { class: "field" },
          el("span", { class: "check" }, input, el("label", { for: id }, name)), hint);
      }
      if (param.choices.length) {
        input = el("select", { id, name, "aria-describedby": `${id}-hint` },
          param.choices.map((c) => el("option", { value: c, selected: c === param.default }, `${c}`)));
      } else if (param.type === "str") {
        input = el("input", { type: "text", id, name, value: param.default, "aria-describedby": `${id}-hint` });
      } else {
        input = el("input", {
          type: "number", id, name, value: param.default,
          step: param.type === "int" ? "1" : "any",
          min: param.minimum ?? null, max: param.maximum ?? null,
          "aria-describedby": `${id}-hint`,
        });
      }
      return el("div", { class: "field" }, el("label", { for: id }, name), input, hint);
    }),
  );
}

// Only parameters that differ from their default are sent; the server fills in the rest.
function readParams(p) {
  const out = {};
  for (const [name, param] of Object.entries(p.params)) {
    const input = $(`param-${name}`);
    let value;
    if (param.type === "bool") value = input.checked;
    else if (param.type === "int" || param.type === "float") {
      if (input.value.trim() === "") continue;
      value = Number(input.value);
      if (!Number.isFinite(value) || (param.type === "int" && !Number.isInteger(value))) {
        throw new Error(`parameter '${name}' must be ${param.type === "int" ? "an integer" : "a number"}`);
      }
    } else value = input.value;
    if (value !== param.default) out[name] = value;
  }
  return out;
}

// --- input slots ---------------------------------------------------------------------------

function renderSlots(p) {
  slots = {};
  const nodes = Object.entries(p.inputs).map(([name, spec]) => {
    const ui = {};
    const accept = spec.accept.length ? spec.accept.join(", ") : "any file";
    ui.input = el("input", {
      type: "file", id: `file-${name}`, "aria-describedby": `desc-${name}`,
      accept: spec.accept.length ? spec.accept.join(",") : null,
    });
    ui.label = el("span", { class: "fname" }, "Drop a file here or click to choose");
    ui.size = el("span", { class: "hint" }, `${accept} · up to ${bytes(spec.max_bytes)}`);
    ui.zone = el("label", { class: "dropzone", for: `file-${name}` }, ui.label, el("br"), ui.size, ui.input);
    ui.bar = el("progress", { id: `progress-${name}`, max: 100, value: 0, "aria-label": `${name} upload progress` });
    ui.numbers = el("div", { class: "numbers", id: `numbers-${name}`, "aria-live": "off" });
    ui.progress = el("div", { class: "progress", hidden: true }, ui.bar, ui.numbers);
    ui.pause = el("button", { type: "button", id: `pause-${name}`, hidden: true, onclick: () => pause(name) }, "Pause");
    ui.resume = el("button", { type: "button", id: `resume-${name}`, hidden: true, onclick: () => resume(name) }, "Resume");
    ui.message = el("p", { class: "msg", id: `msg-${name}`, role: "status", hidden: true });
    ui.root = el(
      "div",
      { class: "slot", "data-slot": name, "data-state": "empty" },
      el("header", {}, el("h3", {}, name),
        el("span", { class: `badge ${spec.required ? "required" : "optional"}` },
          spec.required ? "required" : "optional")),
      el("p", { class: "desc", id: `desc-${name}` }, spec.description || accept),
      ui.zone, ui.progress, el("div", { class: "actions" }, ui.pause, ui.resume), ui.message,
    );
    ui.input.addEventListener("change", () => chooseFile(name, ui.input.files[0] || null));
    ui.zone.addEventListener("dragover", (e) => {
      e.preventDefault();
      if (!task) ui.zone.classList.add("over");
    });
    ui.zone.addEventListener("dragleave", () => ui.zone.classList.remove("over"));
    ui.zone.addEventListener("drop", (e) => {
      e.preventDefault();
      ui.zone.classList.remove("over");
      if (!task && e.dataTransfer.files.length) chooseFile(name, e.dataTransfer.files[0]);
    });
    slots[name] = { spec, file: null, upload: null, state: "empty", ui };
    return ui.root;
  });
  $("slots").replaceChildren(...nodes);
}

function slotMessage(name, text, kind = "error") {
  const m = slots[name].ui.message;
  m.textContent = text;
  m.className = `msg ${kind}`;
  m.setAttribute("role", kind === "error" ? "alert" : "status");
  m.hidden = !text;
}

function setState(name, state) {
  const s = slots[name];
  s.state = state;
  s.ui.root.dataset.state = state;
  s.ui.pause.hidden = state !== "uploading";
  s.ui.resume.hidden = state !== "paused";
  updateSubmit();
}

function chooseFile(name, file) {
  const s = slots[name];
  if (task && !resuming.has(name)) return; // files are fixed once the task exists
  slotMessage(name, "");
  s.file = null;
  s.ui.zone.classList.remove("filled");
  s.ui.label.textContent = "Drop a file here or click to choose";
  if (file) {
    const lower = file.name.toLowerCase();
    // The server checks the same at upload creation; checking here saves a round trip.
    if (s.spec.accept.length && !s.spec.accept.some((ext) => lower.endsWith(ext))) {
      slotMessage(name, `${file.name}: expected ${s.spec.accept.join(" or ")}`);
    } else if (file.size > s.spec.max_bytes) {
      slotMessage(name, `${file.name} is ${bytes(file.size)}; this input takes at most ${bytes(s.spec.max_bytes)}`);
    } else {
      s.file = file;
      s.ui.zone.classList.add("filled");
      s.ui.label.textContent = file.name;
    }
  }
  s.ui.size.textContent = s.file
    ? bytes(s.file.size)
    : `${s.spec.accept.length ? s.spec.accept.join(", ") : "any file"} · up to ${bytes(s.spec.max_bytes)}`;
  setState(name, s.file ? "chosen" : "empty");
  if (s.file && resuming.has(name)) {
    resuming.delete(name);
    s.ui.input.disabled = true;
    startUpload(name, task.upload_urls[name]);
  }
}

function updateSubmit() {
  const missing = Object.entries(slots).filter(([, s]) => s.spec.required && !s.file).map(([n]) => n);
  $("submit").disabled = task !== null || missing.length > 0;
  $("submit-hint").textContent = task
    ? ""
    : missing.length ? `Still needed: ${missing.join(", ")}` : "Ready to upload.";
}

// --- uploads -------------------------------------------------------------------------------

function progress(name, sent, total) {
  const s = slots[name];
  const pct = total ? Math.floor((sent / total) * 100) : 100;
  s.ui.bar.value = pct;
  // Rate over the last few seconds, for an honest ETA-free "how fast".
  const now = performance.now();
  s.samples = (s.samples || []).filter((x) => now - x[0] < 3000);
  s.samples.push([now, sent]);
  const [t0, b0] = s.samples[0];
  const rate = now - t0 > 300 ? ((sent - b0) / (now - t0)) * 1000 : null;
  s.ui.numbers.replaceChildren(
    el("span", {}, `${bytes(sent)} of ${bytes(total)}`),
    el("span", {}, rate && s.state === "uploading" ? `${bytes(rate)}/s · ${pct}%` : `${pct}%`),
  );
  s.ui.root.dataset.sent = String(sent);
}

// tus-js-client errors carry the server's answer; show its status and text as the server wrote it.
function uploadError(err) {
  const res = err.originalResponse;
  if (res && res.getStatus()) {
    let body = (res.getBody() || "").trim();
    try {
      const parsed = JSON.parse(body);
      body = parsed.detail || parsed.message || parsed.error || body;
    } catch {
      /* plain text */
    }
    return `Upload refused (${res.getStatus()}): ${body || "no message"}`;
  }
  return `Upload failed: ${err.message}`;
}

function startUpload(name, url) {
  const s = slots[name];
  s.ui.progress.hidden = false;
  progress(name, 0, s.file.size);
  s.upload = new window.tus.Upload(s.file, {
    endpoint: url,
    metadata: { filename: s.file.name },
    chunkSize: CHUNK_BYTES,
    retryDelays: [0, 1000, 3000, 5000],
    // Remembered (localStorage) until it succeeds: a reload or a closed tab can resume it.
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    // Retry network failures and server trouble, never a refusal (4xx) of the upload itself.
    onShouldRetry(err) {
      const res = err.originalResponse;
      const status = res ? res.getStatus() : 0;
      return status === 0 || status >= 500 || status === 423;
    },
    onProgress: (sent, total) => progress(name, sent, total),
    onSuccess: () => {
      setState(name, "done"); // first: a finished upload shows no rate
      progress(name, s.file.size, s.file.size);
      slotMessage(name, "Uploaded.", "ok");
      maybeStart();
    },
    onError: (err) => {
      setState(name, "error");
      slotMessage(name, uploadError(err));
      $("task-hint").textContent = `The upload of '${name}' failed; the task waits for it.`;
    },
  });
  setState(name, "uploading");
  // The same file into the same slot before (this page, reloaded): go on from the server's offset.
  s.upload.findPreviousUploads().then((previous) => {
    if (previous.length) {
      s.upload.resumeFromPreviousUpload(previous[0]);
      slotMessage(name, "Resuming the interrupted upload…", "info");
    }
    s.upload.start();
  });
}

function pause(name) {
  const s = slots[name];
  if (s.state !== "uploading") return;
  setState(name, "paused");
  slotMessage(name, "Paused: resume continues from what the server has.", "info");
  // abort() stops the running PATCH; the upload URL stays valid on the server.
  s.upload.abort();
}

function resume(name) {
  const s = slots[name];
  if (s.state !== "paused") return;
  slotMessage(name, "");
  setState(name, "uploading");
  // start() on an upload that has its URL asks the server for the offset (HEAD) and goes on.
  s.upload.start();
}

// Queue the task once every chosen file is in. A task whose every slot is filled starts by
// itself; start_task is idempotent and also starts one whose optional slots stay empty.
async function maybeStart() {
  const chosen = Object.values(slots).filter((s) => s.file || s.state === "done");
  if (resuming.size || !chosen.every((s) => s.state === "done")) return;
  localStorage.removeItem(UNFINISHED);
  $("task-hint").textContent = "All files uploaded: starting the task…";
  const deadline = performance.now() + START_RETRY_FOR_MS;
  for (;;) {
    try {
      await api(`/start_task/${task.task_id}`, { method: "POST" });
      $("task-hint").textContent = "";
      watcher.refresh();
      return;
    } catch (e) {
      // 409 "inputs not uploaded yet": the server has not seen the last upload finish yet.
      if (e.status !== 409 || !e.body || !e.body.missing || performance.now() > deadline) {
        $("task-hint").textContent = `Could not start the task: ${e.message}`;
        return;
      }
      await new Promise((r) => setTimeout(r, START_RETRY_MS));
    }
  }
}

let watcher = null;

async function submit() {
  showError("");
  const p = pipelines.find((x) => x.name === $("pipeline").value);
  let params;
  try {
    params = readParams(p);
  } catch (e) {
    showError(e.message);
    return;
  }
  $("submit").disabled = true;
  try {
    task = await api("/create_task", {
      method: "POST",
      body: { pipeline: p.name, params, priority: $("priority").value },
    });
  } catch (e) {
    showError(`The task was not created: ${e.message}`);
    updateSubmit();
    return;
  }
  // The form is fixed from here on: this task's inputs and parameters are chosen.
  $("pipeline").disabled = true;
  $("priority").disabled = true;
  document.querySelectorAll("#params input, #params select").forEach((x) => { x.disabled = true; });
  Object.values(slots).forEach((s) => { s.ui.input.disabled = true; });
  updateSubmit();
  $("task-card").hidden = false;
  $("task-link").href = `/task.html?id=${encodeURIComponent(task.task_id)}`;
  $("another").href = `/?pipeline=${encodeURIComponent(p.name)}`;
  watcher = watchTask($("task-view"), task.task_id);
  const used = Object.keys(slots).filter((name) => slots[name].file);
  localStorage.setItem(UNFINISHED, JSON.stringify({
    task_id: task.task_id, pipeline: p.name, upload_urls: task.upload_urls, slots: used,
  }));
  for (const [name, s] of Object.entries(slots)) {
    if (s.file) startUpload(name, task.upload_urls[name]);
    else s.ui.label.textContent = "not used";
  }
}

// After a reload (or in a new tab): the unfinished uploads of a task that still waits for them
// are offered for resuming; choosing the same file again continues it from the server's offset.
async function offerResume() {
  let saved;
  try {
    saved = JSON.parse(localStorage.getItem(UNFINISHED) || "null");
  } catch {
    saved = null;
  }
  if (!saved || !pipelines.some((p) => p.name === saved.pipeline)) return;
  let current;
  try {
    current = await api(`/query_task/${saved.task_id}`);
  } catch {
    localStorage.removeItem(UNFINISHED); // gone, or another key's
    return;
  }
  if (current.status !== "waiting") {
    localStorage.removeItem(UNFINISHED);
    return;
  }
  $("pipeline").value = saved.pipeline;
  selectPipeline(saved.pipeline);
  task = { task_id: saved.task_id, upload_urls: saved.upload_urls };
  $("pipeline").disabled = true;
  $("priority").disabled = true;
  document.querySelectorAll("#params input, #params select").forEach((x) => { x.disabled = true; });
  for (const [name, s] of Object.entries(slots)) {
    const held = current.inputs[name];
    if (held && held.state === "done") {
      s.ui.input.disabled = true;
      s.ui.label.textContent = held.filename || "uploaded";
      setState(name, "done");
    } else if (saved.slots.includes(name)) {
      resuming.add(name);
      slotMessage(name, "Interrupted: choose the same file again to resume its upload.", "info");
    } else {
      s.ui.input.disabled = true;
      s.ui.label.textContent = "not used";
    }
  }
  updateSubmit();
  $("resume-banner").hidden = false;
  $("resume-banner").textContent = `The uploads of task ${saved.task_id} were interrupted. ` +
    `Choose the same file again for: ${[...resuming].join(", ")}.`;
  $("task-card").hidden = false;
  $("task-link").href = `/task.html?id=${encodeURIComponent(saved.task_id)}`;
  watcher = watchTask($("task-view"), saved.task_id);
}

async function main() {
  wireKeyButton();
  // Dropping a file outside a slot must not navigate away from the page (and its uploads).
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  // Leaving mid-upload loses the page's state (the uploads themselves stay resumable).
  window.addEventListener("beforeunload", (e) => {
    if (Object.values(slots).some((s) => s.state === "uploading" || s.state === "paused")) {
      e.preventDefault();
    }
  });
  if (!window.tus || !window.tus.isSupported) {
    showError("tus-js-client is missing (/static/vendor/tus.min.js): run scripts/install.sh, " +
      "which runs `npm ci` in orchestrator/web.");
    return;
  }
  await ensureKey();
  try {
    pipelines = (await api("/pipelines")).pipelines;
  } catch (e) {
    showError(`Cannot list the pipelines: ${e.message}`);
    return;
  }
  const select = $("pipeline");
  select.replaceChildren(...pipelines.map((p) => el("option", { value: p.name }, p.name)));
  const wanted = new URLSearchParams(location.search).get("pipeline");
  if (wanted && pipelines.some((p) => p.name === wanted)) select.value = wanted;
  select.addEventListener("change", () => selectPipeline(select.value));
  $("submit").addEventListener("click", submit);
  if (pipelines.length) selectPipeline(select.value);
  await offerResume();
}

main();
