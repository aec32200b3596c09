// task.html?id=<task id>: one task, followed live until it ends.
import { el, ensureKey, wireKeyButton } from "./api.js";
import { watchTask } from "./task-view.js";

async function main() {
  wireKeyButton();
  const view = document.getElementById("task-view");
  const id = new URLSearchParams(location.search).get("id");
  if (!id) {
    view.replaceChildren(el("p", { class: "msg error", role: "alert" }, "No task id in the address (task.html?id=…)."));
    return;
  }
  document.title = `Task ${id.slice(0, 8)} · Upload orchestrator`;
  await ensureKey();
  watchTask(view, id);
}

main();
