// The pipeline run page: follow the log over SSE (ANSI colours, search, step filter, follow mode) and keep the
// stage graph's states and durations current while the run is active.
"use strict";

(function () {
  const root = document.querySelector("[data-run]");
  if (!root) return;
  const page = JSON.parse(document.getElementById("juanie-page")?.textContent || "{}");
  const J = window.Juanie;
  const MAX_LINES = 20000;

  // ---- ANSI SGR escapes to spans. Text always goes in through text nodes, so a log can never inject markup.
  const BASIC = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
  // eslint-disable-next-line no-control-regex
  const ESCAPES = /\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]|\x1b[=>78]/g;

  function xterm256(n) {
    if (n < 16) return null;
    if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
    const i = n - 16, steps = [0, 95, 135, 175, 215, 255];
    return `rgb(${steps[Math.floor(i / 36)]},${steps[Math.floor(i / 6) % 6]},${steps[i % 6]})`;
  }

  function applySgr(style, params) {
    const codes = params === "" ? [0] : params.split(";").map((p) => Number.parseInt(p || "0", 10));
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) { for (const k of Object.keys(style)) delete style[k]; }
      else if (c === 1) style.bold = true;
      else if (c === 2) style.dim = true;
      else if (c === 3) style.italic = true;
      else if (c === 4) style.underline = true;
      else if (c === 7) style.inverse = true;
      else if (c === 22) { delete style.bold; delete style.dim; }
      else if (c === 23) delete style.italic;
      else if (c === 24) delete style.underline;
      else if (c === 27) delete style.inverse;
      else if (c >= 30 && c <= 37) { style.fg = "ansi-" + BASIC[c - 30]; delete style.fgRgb; }
      else if (c >= 90 && c <= 97) { style.fg = "ansi-bright-" + BASIC[c - 90]; delete style.fgRgb; }
      else if (c === 39) { delete style.fg; delete style.fgRgb; }
      else if (c >= 40 && c <= 47) { style.bg = "ansi-bg-" + BASIC[c - 40]; delete style.bgRgb; }
      else if (c >= 100 && c <= 107) { style.bg = "ansi-bg-bright-" + BASIC[c - 100]; delete style.bgRgb; }
      else if (c === 49) { delete style.bg; delete style.bgRgb; }
      else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
        const n = codes[i + 2] ?? 0, fg = c === 38;
        const rgb = xterm256(n);
        if (rgb) style[fg ? "fgRgb" : "bgRgb"] = rgb;
        else style[fg ? "fg" : "bg"] = (fg ? "ansi-" : "ansi-bg-") + (n >= 8 ? "bright-" : "") + BASIC[n % 8];
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
        const [r, g, b] = [codes[i + 2] || 0, codes[i + 3] || 0, codes[i + 4] || 0].map((v) => Math.max(0, Math.min(255, v)));
        style[c === 38 ? "fgRgb" : "bgRgb"] = `rgb(${r},${g},${b})`;
        i += 4;
      }
    }
  }

  function styledSpan(text, style) {
    if (!Object.keys(style).length) return document.createTextNode(text);
    const span = document.createElement("span");
    const classes = [];
    if (style.fg) classes.push(style.fg);
    if (style.bg) classes.push(style.bg);
    for (const flag of ["bold", "dim", "italic", "underline", "inverse"]) if (style[flag]) classes.push("ansi-" + flag);
    span.className = classes.join(" ");
    if (style.fgRgb) span.style.color = style.fgRgb;        // CSSOM, allowed by the page's CSP
    if (style.bgRgb) span.style.backgroundColor = style.bgRgb;
    span.textContent = text;
    return span;
  }

  // A carriage return redraws the line (progress bars): keep what was drawn last.
  function lastFrame(text) {
    const parts = text.split("\r").filter((p) => p !== "");
    return parts.length ? parts[parts.length - 1] : "";
  }

  function ansiFragment(raw) {
    const text = lastFrame(String(raw));
    const fragment = document.createDocumentFragment();
    const style = {};
    let last = 0;
    for (const match of text.matchAll(ESCAPES)) {
      if (match.index > last) fragment.append(styledSpan(text.slice(last, match.index), Object.assign({}, style)));
      if (match[2] === "m") applySgr(style, match[1]);
      last = match.index + match[0].length;
    }
    if (last < text.length) fragment.append(styledSpan(text.slice(last), Object.assign({}, style)));
    return fragment;
  }

  function plain(raw) { return lastFrame(String(raw)).replace(ESCAPES, ""); }

  window.JuanieAnsi = { fragment: ansiFragment, plain };

  // ---- The log view.
  const log = document.querySelector("[data-log-src]");
  const empty = document.querySelector("[data-log-empty]");
  const foot = document.querySelector("[data-log-foot]");
  const status = document.querySelector("[data-live-status]");
  const search = document.querySelector("[data-log-search]");
  const count = document.querySelector("[data-log-count]");
  const only = document.querySelector("[data-log-only]");
  const follow = document.querySelector("[data-log-follow]");
  const stepSelect = document.querySelector("[data-log-step-select]");
  const seen = new Set();
  let matches = [];
  let current = -1;
  let stepFilter = "";
  let dropped = false;
  let ended = false;

  function timeOf(ts) {
    const d = new Date(ts * 1000);
    return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(11, 19);
  }

  function lineMatches(row, needle) {
    return needle !== "" && row.dataset.plain.includes(needle);
  }

  function applyVisibility(row, needle) {
    const stepHidden = stepFilter !== "" && row.dataset.step !== stepFilter;
    const hit = lineMatches(row, needle);
    row.classList.toggle("is-match", hit);
    row.hidden = stepHidden || (only.checked && needle !== "" && !hit);
    return hit && !row.hidden;
  }

  function refreshSearch() {
    const needle = search.value.trim().toLowerCase();
    matches = [];
    for (const row of log.querySelectorAll(".log-line")) if (applyVisibility(row, needle)) matches.push(row);
    current = Math.min(current, matches.length - 1);
    for (const row of log.querySelectorAll(".log-line.is-current")) row.classList.remove("is-current");
    count.textContent = needle === "" ? "" : matches.length ? page.matches.replace("{n}", String(matches.length)) : page.no_matches;
  }

  function jump(step) {
    if (!matches.length) return;
    if (current >= 0 && matches[current]) matches[current].classList.remove("is-current");
    current = (current + step + matches.length) % matches.length;
    const row = matches[current];
    row.classList.add("is-current");
    follow.checked = false;
    row.scrollIntoView({ block: "center" });
  }

  function addLine(item) {
    const id = item.step + "#" + item.offset;
    if (seen.has(id)) return;   // a reconnect replays from the start
    seen.add(id);
    if (empty) empty.hidden = true;
    const row = document.createElement("div");
    row.className = "log-line" + (item.stream === "stderr" ? " is-stderr" : "");
    row.dataset.step = item.step;
    row.dataset.plain = plain(item.text).toLowerCase();
    const ts = document.createElement("span");
    ts.className = "log-ts";
    ts.textContent = timeOf(item.ts);
    const step = document.createElement("span");
    step.className = "log-step";
    step.textContent = item.step;
    const text = document.createElement("span");
    text.className = "log-text";
    text.append(ansiFragment(item.text));
    row.append(ts, step, text);
    const needle = search.value.trim().toLowerCase();
    if (applyVisibility(row, needle)) matches.push(row);
    log.append(row);
    while (log.childElementCount > MAX_LINES) { log.firstElementChild.remove(); dropped = true; }
    if (needle !== "") count.textContent = matches.length ? page.matches.replace("{n}", String(matches.length)) : page.no_matches;
  }

  let pending = [];
  let scheduled = false;
  function flush() {
    scheduled = false;
    const batch = pending;
    pending = [];
    for (const item of batch) addLine(item);
    if (follow.checked) log.scrollTop = log.scrollHeight;
    if (dropped) foot.textContent = page.log_cut;
  }

  function stream() {
    if (!window.EventSource) return;
    const source = new EventSource(log.dataset.logSrc);
    source.onopen = () => { if (status) { status.textContent = J.t("live"); status.classList.remove("is-down"); } };
    source.onerror = () => {
      if (ended) return;
      if (status) { status.textContent = J.t("reconnecting"); status.classList.add("is-down"); }
    };
    source.onmessage = (message) => {
      pending.push(JSON.parse(message.data));
      if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
    };
    source.addEventListener("end", () => {
      ended = true;
      source.close();
      flush();
      if (status) { status.textContent = ""; }
      foot.textContent = (dropped ? page.log_cut + " " : "") + page.log_ended;
      log.dataset.ended = "1";
    });
    window.addEventListener("pagehide", () => source.close());
  }

  search.addEventListener("input", () => { current = -1; refreshSearch(); });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); jump(event.shiftKey ? -1 : 1); }
  });
  document.querySelector("[data-log-next]").addEventListener("click", () => jump(1));
  document.querySelector("[data-log-prev]").addEventListener("click", () => jump(-1));
  only.addEventListener("change", refreshSearch);
  follow.addEventListener("change", () => { if (follow.checked) log.scrollTop = log.scrollHeight; });
  log.addEventListener("wheel", (event) => { if (event.deltaY < 0) follow.checked = false; }, { passive: true });

  function setStep(key) {
    stepFilter = key;
    stepSelect.value = key;
    for (const button of document.querySelectorAll("[data-log-step]")) {
      button.setAttribute("aria-pressed", String(button.dataset.logStep === key && key !== ""));
    }
    refreshSearch();
  }
  stepSelect.addEventListener("change", () => setStep(stepSelect.value));
  for (const button of document.querySelectorAll("[data-log-step]")) {
    button.addEventListener("click", () => setStep(stepFilter === button.dataset.logStep ? "" : button.dataset.logStep));
  }

  // ---- The graph and header, kept current while the run is active.
  const labels = page.states || {};
  const tones = page.tones || {};
  function chip(state) {
    const span = document.createElement("span");
    span.className = "chip tone-" + (tones[state] || "muted");
    span.title = state;
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.setAttribute("aria-hidden", "true");
    span.append(dot, labels[state] || state);
    return span;
  }
  function setTone(el, state) {
    el.className = el.className.replace(/\btone-\w+/g, "").trim() + " tone-" + (tones[state] || "muted");
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined || !(seconds >= 0)) return "";
    if (seconds < 10) return seconds.toFixed(1) + "s";
    const whole = Math.round(seconds);
    if (whole < 60) return whole + "s";
    const m = Math.floor(whole / 60), s = whole % 60;
    if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
  }
  const STAGE_ORDER = ["failed", "running", "cancelled"];
  function stageState(states) {
    for (const s of STAGE_ORDER) if (states.includes(s)) return s;
    if (states.length && states.every((s) => s === "skipped")) return "skipped";
    if (states.length && states.every((s) => ["succeeded", "skipped", "failed", "cancelled"].includes(s))) return "succeeded";
    return states.some((s) => s !== "queued") ? "running" : "queued";
  }

  function update(run) {
    const now = Date.now() / 1000;
    const byStage = {};
    for (const step of run.steps || []) {
      const button = document.querySelector(`[data-step-key="${CSS.escape(step.key)}"]`);
      (byStage[step.stage] = byStage[step.stage] || []).push(step);
      if (!button) continue;
      setTone(button, step.state);
      const holder = button.querySelector("[data-step-state]");
      if (holder.firstElementChild?.title !== step.state) holder.replaceChildren(chip(step.state));
      const end = step.finished ?? (step.state === "running" ? now : null);
      button.querySelector("[data-step-duration]").textContent = step.started != null && end != null ? duration(end - step.started) : "";
      button.querySelector("[data-step-exit]").textContent = step.exit_code ? "exit " + step.exit_code : "";
    }
    for (const [name, steps] of Object.entries(byStage)) {
      const box = document.querySelector(`[data-stage="${CSS.escape(name)}"]`);
      if (!box) continue;
      setTone(box, stageState(steps.map((s) => s.state)));
      const starts = steps.filter((s) => s.started != null).map((s) => s.started);
      const ends = steps.filter((s) => s.started != null).map((s) => s.finished ?? (s.state === "running" ? now : null)).filter((e) => e != null);
      box.querySelector("[data-stage-duration]").textContent = starts.length && ends.length ? duration(Math.max(...ends) - Math.min(...starts)) : "";
    }
    const header = document.querySelector("[data-run-status]");
    if (header.firstElementChild?.title !== run.status) header.replaceChildren(chip(run.status));
    const dur = document.querySelector("[data-run-duration]");
    const started = run.started_at ? Date.parse(run.started_at) / 1000 : null;
    const finished = run.finished_at ? Date.parse(run.finished_at) / 1000 : null;
    if (started) dur.textContent = duration((finished || now) - started);
    const error = document.querySelector("[data-run-error]");
    error.textContent = run.error || "";
    error.hidden = !run.error;
    const active = run.status === "queued" || run.status === "running";
    const cancel = document.querySelector("[data-run-cancel]");
    if (cancel) cancel.hidden = !active || run.cancel_requested;
    root.dataset.runActive = active ? "1" : "0";
    return active;
  }

  async function poll(once) {
    const result = await J.api("GET", root.dataset.runSrc);
    if (result.status === 401) return J.toLogin();
    const keep = result.ok ? update(result.data) : true;
    const missingSteps = result.ok && (result.data.steps || []).some((s) => !document.querySelector(`[data-step-key="${CSS.escape(s.key)}"]`));
    if (missingSteps) return window.location.reload();   // the run was planned after this page was drawn
    if (keep && !once) setTimeout(poll, 1500);
  }

  document.addEventListener("juanie:acted", () => { poll(true); });
  stream();
  if (root.dataset.runActive === "1") setTimeout(poll, 1000);
})();
