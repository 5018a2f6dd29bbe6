// The project's environment board: each column asks the engine what runs there (health, replicas ready), and a
// promote shows the manifest diff it would commit before anyone confirms it.
"use strict";

(function () {
  const page = JSON.parse(document.getElementById("juanie-page")?.textContent || "{}");
  const J = window.Juanie;
  if (!J) return;
  const tones = page.tones || {};
  const labels = page.states || {};

  function chip(state, label) {
    const key = String(state || "unknown").toLowerCase();
    const span = document.createElement("span");
    span.className = "chip tone-" + (tones[key] || "muted");
    span.title = state;
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.setAttribute("aria-hidden", "true");
    span.append(dot, label || labels[key] || state);
    return span;
  }

  async function envStatus(column) {
    const health = column.querySelector("[data-env-health]");
    const result = await J.api("GET", column.dataset.envStatusSrc);
    if (!result.ok) {
      const reason = document.createElement("span");
      reason.className = "muted";
      reason.textContent = page.health_unknown;
      reason.title = page.no_engine.replace("{reason}", result.message || "");
      health.replaceChildren(reason);
      return;
    }
    const status = result.data;
    const workloads = status.workloads || [];
    health.replaceChildren(chip(status.health || "Unknown"));
    if (status.sync && status.sync !== "Unknown") health.append(" ", chip(status.sync));
    if (workloads.length) {
      const ready = workloads.reduce((sum, w) => sum + (w.ready || 0), 0);
      const desired = workloads.reduce((sum, w) => sum + (w.desired || 0), 0);
      column.querySelector("[data-env-ready]").textContent = String(ready);
      column.querySelector("[data-env-desired]").textContent = String(desired);
    }
    if ((status.drift || []).length) health.title = status.drift.join("\n");
  }

  for (const column of document.querySelectorAll("[data-env-status-src]")) envStatus(column);

  // A unified diff drawn line by line, each line's text in a text node.
  function renderDiff(target, diff) {
    const pre = document.createElement("pre");
    pre.className = "diff-preview";
    for (const line of diff.split("\n")) {
      const row = document.createElement("span");
      row.className = line.startsWith("+") && !line.startsWith("+++") ? "d-add"
        : line.startsWith("-") && !line.startsWith("---") ? "d-del" : line.startsWith("@@") ? "d-hunk" : "";
      row.textContent = line + "\n";
      pre.append(row);
    }
    target.replaceChildren(pre);
  }

  for (const box of document.querySelectorAll("[data-promote]")) {
    box.addEventListener("toggle", async () => {
      if (!box.open || box.dataset.loaded) return;
      const target = box.querySelector("[data-preview]");
      target.textContent = page.loading;
      const result = await J.api("GET", box.dataset.previewSrc);
      if (!result.ok) {
        target.textContent = result.message;
        target.className = "promote-preview form-error";
        return;
      }
      box.dataset.loaded = "1";
      const head = document.createElement("p");
      head.className = "small";
      head.textContent = result.data.release || "";
      if (result.data.diff) { renderDiff(target, result.data.diff); target.prepend(head); }
      else target.textContent = page.preview_empty;
    });
  }
})();
