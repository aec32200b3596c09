// Shared by every page: the API key (asked once, kept in localStorage), API calls that send it
// as X-API-Key, and small formatting helpers. No framework: plain ES modules.

const KEY_STORAGE = "orchestrator.apiKey";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

// The dialog is built once per page; ensureKey() resolves when a key is stored.
let dialog = null;
let waiting = [];

function keyDialog() {
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "key-dialog";
  dialog.setAttribute("aria-labelledby", "key-title");
  dialog.innerHTML = `
    <form method="dialog">
      <h2 id="key-title">API key</h2>
      <p class="muted small">The key is printed by <code>make up</code> (and kept in
        <code>.stack/env</code>). It stays in this browser only.</p>
      <p class="msg error" id="key-error" role="alert" hidden></p>
      <label for="key-input">Key</label>
      <input id="key-input" type="password" autocomplete="off" required>
      <div class="row"><button class="primary" id="key-save" type="submit">Save key</button></div>
    </form>`;
  document.body.append(dialog);
  dialog.querySelector("form").addEventListener("submit", () => {
    const value = dialog.querySelector("#key-input").value.trim();
    localStorage.setItem(KEY_STORAGE, value);
    const resolve = waiting;
    waiting = [];
    resolve.forEach((fn) => fn(value));
  });
  // Escape would leave the page without a key: keep the dialog open until one is given.
  dialog.addEventListener("cancel", (e) => e.preventDefault());
  return dialog;
}

export function askForKey(message = "") {
  const d = keyDialog();
  const err = d.querySelector("#key-error");
  err.textContent = message;
  err.hidden = !message;
  d.querySelector("#key-input").value = apiKey();
  if (!d.open) d.showModal();
  return new Promise((resolve) => waiting.push(resolve));
}

// Resolves once a key is stored; then the header names the key's project (GET /whoami).
export async function ensureKey() {
  const key = apiKey() || (await askForKey());
  showProject();
  return key;
}

async function showProject() {
  const button = document.getElementById("change-key");
  if (!button) return;
  try {
    const who = await api("/whoami");
    button.textContent = `${who.project} (${who.role}) · API key`;
    button.dataset.project = who.project;
  } catch {
    // The page's own calls report an unusable key; the header keeps its plain label.
  }
}

// Wire the "API key" button every page has in its header.
export function wireKeyButton() {
  const button = document.getElementById("change-key");
  if (button) button.addEventListener("click", () => askForKey().then(() => location.reload()));
}

// Litestar error bodies are {"status_code", "detail", ...extra}.
function describe(status, body) {
  if (body && typeof body === "object" && body.detail) {
    const extra = Array.isArray(body.missing) ? ` (${body.missing.join(", ")})` : "";
    return `${body.detail}${extra}`;
  }
  return typeof body === "string" && body ? body.slice(0, 300) : `HTTP ${status}`;
}

// Call the API; a 401 asks for the key again and retries once it is given.
export async function api(path, { method = "GET", body } = {}) {
  for (;;) {
    const headers = { "X-API-Key": apiKey() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, `cannot reach the API: ${e.message}`, null);
    }
    const text = await response.text();
    let data = text;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON: keep the text */
    }
    if (response.status === 401) {
      await askForKey("The API did not accept this key.");
      continue;
    }
    if (!response.ok) throw new ApiError(response.status, describe(response.status, data), data);
    return data;
  }
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export function bytes(n) {
  if (n === null || n === undefined) return "–";
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${Math.round(n)} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[i]}`;
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function duration(fromIso, toIso) {
  if (!fromIso) return "–";
  const s = Math.max(0, ((toIso ? new Date(toIso) : new Date()) - new Date(fromIso)) / 1000);
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// Create an element: el("td", {class: "num"}, "text", child, ...).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) node.append(c);
  }
  return node;
}

export function statusBadge(status) {
  return el("span", { class: `badge status ${status}`, "data-status": status }, status);
}

export const TERMINAL = new Set(["done", "error", "killed"]);
