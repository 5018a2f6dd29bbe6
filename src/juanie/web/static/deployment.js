// The deployment page, live: poll the deployment every two seconds and redraw its status, weights, steps,
// verdicts, controls, and per-version charts of request rate, error ratio and p95 latency.
"use strict";

(function () {
  const root = document.querySelector("[data-deployment]");
  if (!root) return;
  const page = JSON.parse(document.getElementById("juanie-page")?.textContent || "{}");
  const J = window.Juanie;
  const labels = page.states || {};
  const tones = page.tones || {};
  const sources = page.sources || [];
  const INTERVAL_MS = 2000;
  const MAX_POINTS = 300;
  const FINAL = ["success", "failed", "rolled_back", "cancelled"];
  const SVG = "http://www.w3.org/2000/svg";
  let sourceIndex = 0;
  const history = {};   // version -> [{t, rate, errors, latency}]

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
  function setChip(holder, state) {
    if (!holder) return;
    if (!state) { holder.replaceChildren(); return; }
    if (holder.firstElementChild?.title !== state) holder.replaceChildren(chip(state));
  }

  // ---- Controls: the same rule as juanie.web.deploy_view.control_applies.
  const PAUSABLE = ["analysing", "progressing", "starting"];
  const ABORTABLE = ["", "analysing", "paused", "progressing", "promoting", "starting"];
  function applies(action, d) {
    const status = d.status || "", phase = d.phase || "";
    const active = status === "pending" || status === "running";
    if (action === "approve" || action === "reject") return active && !!d.approval && d.approval.status === "requested";
    if (action === "pause") return status === "running" && PAUSABLE.includes(phase);
    if (action === "resume") return active && phase === "paused";
    if (action === "abort") return active && ABORTABLE.includes(phase);
    if (action === "retry") return ["failed", "rolled_back", "cancelled"].includes(status);
    return false;
  }

  function canaryWeight(d) {
    const w = d.weights && d.weights.canary;
    return typeof w === "number" ? Math.max(0, Math.min(100, Math.round(w))) : null;
  }

  function renderWeights(d) {
    const canary = canaryWeight(d);
    const stable = canary === null ? null : 100 - canary;
    const bar = document.querySelector("[data-w-canary]");
    bar.setAttribute("x", String(stable ?? 100));
    bar.setAttribute("width", String(canary ?? 0));
    document.querySelector("[data-w-stable]").setAttribute("width", String(stable ?? 100));
    document.querySelector("[data-w-stable-text]").textContent = stable === null ? "—" : stable + "%";
    document.querySelector("[data-w-canary-text]").textContent = canary === null ? "—" : canary + "%";
    for (const mark of document.querySelectorAll("[data-steps] .mark")) {
      const w = Number(mark.dataset.weight);
      let state = "next";
      if (d.status === "success") state = "done";
      else if (canary) state = w < canary ? "done" : w === canary ? "current" : "next";
      mark.className = "mark mark-" + state;
      mark.querySelector(".visually-hidden").textContent = " " + state;
    }
  }

  function renderVerdicts(d) {
    const list = document.querySelector("[data-verdicts]");
    const verdicts = (d.verdicts || []).filter((v) => v && v.sentence).slice().reverse();
    const empty = document.querySelector("[data-verdicts-empty]");
    if (empty) empty.hidden = verdicts.length > 0;
    if (list.dataset.count === String(verdicts.length) && list.dataset.first === (verdicts[0]?.sentence || "")) return;
    list.dataset.count = String(verdicts.length);
    list.dataset.first = verdicts[0]?.sentence || "";
    list.replaceChildren(...verdicts.map((v) => {
      const li = document.createElement("li");
      li.className = "verdict tone-" + (tones[v.outcome] || "muted");
      const when = document.createElement("span");
      when.className = "verdict-when mono";
      if (typeof v.at === "number") when.textContent = v.at > 1e9 ? new Date(v.at * 1000).toISOString().slice(11, 19) : "+" + Math.round(v.at) + "s";
      const sentence = document.createElement("span");
      sentence.className = "verdict-sentence";
      sentence.textContent = v.sentence;
      li.append(when, chip(v.outcome || "inconclusive"), sentence);
      return li;
    }));
  }

  function num(v) { return typeof v === "number" && Number.isFinite(v) ? v : null; }

  // Signals come as {version: values} or {service: {version: values}} (the same rule as deploy_view).
  const KEYS = ["requests", "errors", "rate", "latency_p95"];
  function flatten(signals) {
    const rows = [];
    if (!signals || typeof signals !== "object") return rows;
    for (const [key, value] of Object.entries(signals)) {
      if (!value || typeof value !== "object") continue;
      if (KEYS.some((k) => k in value)) { rows.push(["", key, value]); continue; }
      for (const [version, values] of Object.entries(value)) if (values && typeof values === "object") rows.push([key, version, values]);
    }
    return rows;
  }
  function role(d, version) {
    if (version === "canary" || version === "new" || (version && version === d.release)) return "new";
    if (version === "stable" || (version && version === d.previous_release)) return "stable";
    return "";
  }
  const ROLE_ORDER = { stable: 0, new: 1, "": 2 };

  function renderSignals(d) {
    const rows = flatten(d.signals);
    if (!rows.length) return;
    rows.sort((a, b) => a[0].localeCompare(b[0]) || ROLE_ORDER[role(d, a[1])] - ROLE_ORDER[role(d, b[1])] || a[1].localeCompare(b[1]));
    const body = document.querySelector("[data-signals-body]");
    const t = Date.now() / 1000;
    const byVersion = {};
    body.replaceChildren(...rows.map(([service, version, s]) => {
      const requests = num(s.requests), errors = num(s.errors), rate = num(s.rate), p95 = num(s.latency_p95);
      const ratio = requests ? (errors || 0) / requests : null;
      const agg = byVersion[version] = byVersion[version] || { requests: 0, errors: 0, rate: null, p95: null };
      agg.requests += requests || 0;
      agg.errors += errors || 0;
      if (rate !== null) agg.rate = (agg.rate || 0) + rate;
      if (p95 !== null) agg.p95 = Math.max(agg.p95 ?? 0, p95);
      const tr = document.createElement("tr");
      const cells = [service || "—", version, requests === null ? "—" : String(Math.round(requests)),
        errors === null ? "—" : String(Math.round(errors)), ratio === null ? "—" : (ratio * 100).toFixed(2) + "%",
        rate === null ? "—" : rate.toFixed(1) + "/s", p95 === null ? "—" : Math.round(p95 * 1000) + " ms"];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        if (i === 1) {
          const code = document.createElement("span");
          code.className = "mono";
          code.textContent = text;
          td.append(code);
          const r = role(d, version);
          if (r) { const tag = document.createElement("span"); tag.className = "tag"; tag.textContent = page["role_" + r]; td.append(" ", tag); }
        } else td.textContent = text;
        tr.append(td);
      });
      return tr;
    }));
    // The charts show one line per version, summed over services (p95: the slowest service).
    for (const [version, agg] of Object.entries(byVersion)) {
      const r = role(d, version);
      const name = version.length > 12 ? version.slice(0, 12) : version;
      const label = r && version !== r && !(r === "new" && version === "canary") ? `${name} (${page["role_" + r]})` : name;
      const series = history[label] = history[label] || [];
      series.push({ t, rate: agg.rate, ratio: agg.requests ? agg.errors / agg.requests : null, p95: agg.p95 });
      if (series.length > MAX_POINTS) series.shift();
    }
    drawChart("rate", page.chart_rate, (p) => p.rate, (v) => v.toFixed(v < 10 ? 1 : 0));
    drawChart("errors", page.chart_errors, (p) => p.ratio === null ? null : p.ratio * 100, (v) => v.toFixed(v < 1 ? 2 : 1) + "%");
    drawChart("latency", page.chart_latency, (p) => p.p95 === null ? null : p.p95 * 1000, (v) => Math.round(v) + "ms");
  }

  // ---- A small line chart with the same classes as juanie.web.svg.line_chart (so it follows the themes).
  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function niceTicks(lo, hi) {
    if (hi === lo) { const pad = Math.abs(hi) * 0.5 || 1; lo -= pad; hi += pad; }
    const raw = (hi - lo) / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * 0.999);
    const ticks = [Math.floor(lo / step) * step];
    while (ticks[ticks.length - 1] < hi - step * 1e-9 && ticks.length < 12) ticks.push(ticks[0] + step * ticks.length);
    return ticks;
  }
  function drawChart(key, title, pick, format) {
    const box = document.querySelector(`[data-chart="${key}"]`);
    if (!box) return;
    const width = 600, height = 150, left = 52, right = 12, top = 12, bottom = 40;
    const pw = width - left - right, ph = height - top - bottom;
    const series = Object.entries(history).map(([version, points]) => ({ version, points: points.map((p) => [p.t, pick(p)]).filter((p) => p[1] !== null) }));
    const all = series.flatMap((s) => s.points);
    const svg = el("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": title, preserveAspectRatio: "xMidYMid meet" });
    svg.append(el("title", {}, title), el("rect", { class: "chart-frame", x: left, y: top, width: pw, height: ph }));
    if (!all.length) {
      svg.append(el("text", { class: "chart-empty", x: left + pw / 2, y: top + ph / 2, "text-anchor": "middle" }, page.collecting));
      box.querySelector("svg").replaceWith(svg);
      return;
    }
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    const ticks = niceTicks(Math.min(0, ...ys), Math.max(...ys));
    const ylo = ticks[0], yhi = ticks[ticks.length - 1];
    const xlo = Math.min(...xs), xhi = Math.max(...xs);
    const px = (x) => left + pw * (xhi === xlo ? 0.5 : (x - xlo) / (xhi - xlo));
    const py = (y) => top + ph * (1 - (y - ylo) / ((yhi - ylo) || 1));
    for (const tick of ticks) {
      svg.append(el("line", { class: "chart-grid", x1: left, x2: left + pw, y1: py(tick).toFixed(1), y2: py(tick).toFixed(1) }));
      svg.append(el("text", { class: "chart-axis chart-y", x: left - 6, y: (py(tick) + 4).toFixed(1), "text-anchor": "end" }, format(tick)));
    }
    const clock = (x) => new Date(x * 1000).toISOString().slice(11, 19);
    svg.append(el("text", { class: "chart-axis chart-x", x: left, y: top + ph + 16, "text-anchor": "start" }, clock(xlo)));
    if (xhi !== xlo) svg.append(el("text", { class: "chart-axis chart-x", x: left + pw, y: top + ph + 16, "text-anchor": "end" }, clock(xhi)));
    let legendX = left;
    series.forEach((s, index) => {
      const css = "series-" + (index % 6);
      if (s.points.length === 1) svg.append(el("circle", { class: "chart-dot " + css, cx: px(s.points[0][0]).toFixed(1), cy: py(s.points[0][1]).toFixed(1), r: 2.5 }));
      else if (s.points.length > 1) {
        const line = el("polyline", { class: "chart-line " + css, points: s.points.map((p) => px(p[0]).toFixed(1) + "," + py(p[1]).toFixed(1)).join(" ") });
        line.append(el("title", {}, s.version));
        svg.append(line);
      }
      svg.append(el("rect", { class: "chart-key " + css, x: legendX, y: height - 12, width: 10, height: 4 }));
      svg.append(el("text", { class: "chart-legend", x: legendX + 14, y: height - 8 }, s.version));
      legendX += 24 + 6.5 * s.version.length;
    });
    box.querySelector("svg").replaceWith(svg);
  }

  function render(d) {
    setChip(document.querySelector("[data-dep-status]"), d.status);
    setChip(document.querySelector("[data-dep-phase]"), d.phase);
    const message = document.querySelector("[data-dep-message]");
    message.textContent = d.message || "";
    message.hidden = !d.message;
    message.className = "notice tone-" + (tones[d.status] || "muted");
    renderWeights(d);
    renderVerdicts(d);
    renderSignals(d);
    const approval = document.querySelector("[data-approval]");
    approval.hidden = !d.approval;
    if (d.approval) {
      setChip(document.querySelector("[data-approval-status]"), d.approval.status);
      document.querySelector("[data-approval-detail]").textContent =
        [d.approval.mode, d.approval.decided_by, d.approval.reason].filter(Boolean).join(" · ");
      const override = document.querySelector("[data-approval-override]");
      if (override) {
        override.hidden = d.approval.status !== "overridden";
        override.querySelector("[data-approval-override-text]").textContent =
          override.hidden ? "" : [d.approval.decided_by, d.approval.reason].filter(Boolean).join(" · ");
      }
    }
    for (const button of document.querySelectorAll("[data-control]")) button.hidden = !applies(button.dataset.control, d);
    root.dataset.status = d.status;
  }

  const status = document.querySelector("[data-live-status]");
  let timer = null;
  async function poll() {
    timer = null;
    let result = null;
    while (sourceIndex < sources.length) {
      result = await J.api("GET", sources[sourceIndex]);
      if (result.status === 401) return J.toLogin();
      if (!result.missing) break;
      sourceIndex += 1;   // this server has no delivery API route yet: read the store's copy instead
    }
    if (result && result.ok) {
      render(result.data);
      if (status) { status.textContent = J.t("live"); status.classList.remove("is-down"); }
    } else if (status) {
      status.textContent = J.t("reconnecting");
      status.classList.add("is-down");
      status.title = page.unreachable;
    }
    const done = result && result.ok && FINAL.includes(result.data.status);
    // A finished deployment changes no more; keep polling slowly in case someone retries it.
    timer = setTimeout(poll, done ? INTERVAL_MS * 5 : INTERVAL_MS);
  }

  if (page.deployment) renderSignals(page.deployment);
  document.addEventListener("juanie:acted", () => { if (timer) clearTimeout(timer); poll(); });
  timer = setTimeout(poll, 500);
  window.addEventListener("pagehide", () => { if (timer) clearTimeout(timer); });
})();
