// Observe pages: regions that re-read themselves (charts, alerts), the silence form with errors beside the field
// they concern, the live log tail (SSE), and the channels' "send test" button.
"use strict";

(function () {
  const J = window.Juanie;
  const page = JSON.parse(document.getElementById("juanie-page")?.textContent || "{}");
  const status = document.querySelector("[data-live-status]");

  function setLive(ok) {
    if (!status) return;
    status.textContent = J.t(ok ? "live" : "reconnecting");
    status.classList.toggle("is-down", !ok);
  }

  // ---- Live regions: the page is fetched again every few seconds and each [data-refresh] region is swapped in.
  const regions = document.querySelectorAll("[data-refresh]");
  const every = Number.parseInt(document.querySelector("[data-refresh-every]")?.dataset.refreshEvery || "0", 10);
  if (regions.length && every > 0) {
    let timer = null;
    async function refresh() {
      timer = null;
      if (!document.hidden) {
        try {
          const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
          if (response.redirected && new URL(response.url).pathname === "/login") return J.toLogin();
          if (response.ok) {
            const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
            for (const region of document.querySelectorAll("[data-refresh]")) {
              const next = fresh.querySelector(`[data-refresh="${region.dataset.refresh}"]`);
              // Never pull the rug from under a keyboard user: a region holding the focus waits for the next round.
              if (region.contains(document.activeElement) && document.activeElement !== document.body) continue;
              if (next && next.innerHTML !== region.innerHTML) {
                region.innerHTML = next.innerHTML;
                for (const [key, value] of Object.entries(next.dataset)) region.dataset[key] = value;
              }
            }
            document.dispatchEvent(new CustomEvent("juanie:refreshed"));
            setLive(true);
          } else setLive(false);
        } catch (err) {
          setLive(false);
        }
      }
      timer = setTimeout(refresh, every * 1000);
    }
    setLive(true);
    timer = setTimeout(refresh, every * 1000);
    window.addEventListener("pagehide", () => { if (timer) clearTimeout(timer); });
  }

  // ---- The silence form: the API's error is shown beside the field it names (its `location`).
  const form = document.querySelector("form[data-silence-form]");
  // `a="x, y",b!="z"` (braces optional) -> ['a="x, y"', 'b!="z"']: commas inside quotes stay, as in Alertmanager.
  // Sent as a list, so the API parses each matcher whole.
  function splitMatchers(text) {
    let body = text.trim();
    if (body.startsWith("{") && body.endsWith("}")) body = body.slice(1, -1);
    const parts = [];
    let current = "", quoted = false, escaped = false;
    for (const ch of body) {
      if (escaped) escaped = false;
      else if (ch === "\\" && quoted) escaped = true;
      else if (ch === '"') quoted = !quoted;
      else if (ch === "," && !quoted) { parts.push(current); current = ""; continue; }
      current += ch;
    }
    parts.push(current);
    return parts.map((p) => p.trim()).filter(Boolean);
  }
  function clearErrors() {
    for (const box of form.querySelectorAll("[data-error-for]")) { box.textContent = ""; box.hidden = true; }
    for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
    form.querySelector(".form-error").hidden = true;
  }
  function fieldError(location, message) {
    const key = ["matchers", "duration", "comment"].includes(location) ? location : "";
    const box = key && form.querySelector(`[data-error-for="${key}"]`);
    if (!box) {
      const general = form.querySelector(".form-error");
      general.textContent = message;
      general.hidden = false;
      return;
    }
    box.textContent = message;
    box.hidden = false;
    const field = form.elements[key];
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors();
      const body = {
        project: form.elements.project.value,
        matchers: splitMatchers(form.elements.matchers.value),
        duration: form.elements.duration.value.trim(),
        comment: form.elements.comment.value.trim(),
      };
      if (!body.matchers.length) return fieldError("matchers", page.need_matchers);
      if (!body.comment) return fieldError("comment", page.need_comment);
      const submit = form.querySelector("[type=submit]");
      submit.setAttribute("aria-busy", "true");
      const result = await J.api("POST", "/api/silences", body);
      submit.removeAttribute("aria-busy");
      if (result.status === 401) return J.toLogin();
      if (!result.ok) {
        const location = result.data && result.data.error ? String(result.data.error.location || "") : "";
        // Pydantic's locations look like "body.comment"; the API's own are bare field names.
        return fieldError(location.split(".").pop(), result.message);
      }
      window.location.assign(location.pathname + "?created=" + encodeURIComponent(result.data.id) + "#silences");
    });
  }

  // ---- Logs: Follow opens the API's SSE stream and appends each new line at the bottom.
  const list = document.querySelector("[data-log-list]");
  const follow = document.querySelector("[data-follow]");
  let stream = null;
  function logRow(rec) {
    const li = document.createElement("li");
    const level = String(rec.level || "info");
    li.className = "log-row is-new level-" + level.replace(/[^a-z]/g, "");
    const when = new Date(Number(rec.ts) * 1000);
    const cells = [
      ["log-time", when.toISOString().slice(11, 19)],
      ["log-level", level],
      ["log-service", rec.service || ""],
      ["log-msg", rec.msg || rec.raw || ""],
    ];
    for (const [css, text] of cells) {
      const span = document.createElement(css === "log-time" ? "time" : "span");
      span.className = css;
      span.textContent = text;
      if (css === "log-time") span.setAttribute("datetime", when.toISOString());
      li.append(span);
    }
    return li;
  }
  function stopFollowing() {
    if (stream) stream.close();
    stream = null;
    follow.setAttribute("aria-pressed", "false");
    follow.textContent = page.follow;
    if (status) status.textContent = "";
  }
  if (list && follow && follow.dataset.follow) {
    follow.addEventListener("click", () => {
      if (stream) return stopFollowing();
      stream = new EventSource(follow.dataset.follow);
      follow.setAttribute("aria-pressed", "true");
      follow.textContent = page.stop;
      stream.onopen = () => setLive(true);
      stream.onerror = () => setLive(false);
      stream.onmessage = (message) => {
        let rec;
        try { rec = JSON.parse(message.data); } catch (err) { return; }
        const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 24;
        list.append(logRow(rec));
        const count = document.querySelector("[data-log-count]");
        if (count) count.textContent = String(Number.parseInt(count.textContent, 10) + 1);
        for (const empty of document.querySelectorAll("[data-log-empty]")) empty.remove();
        list.hidden = false;
        while (list.children.length > (page.max_lines || 2000)) list.firstElementChild.remove();
        if (atBottom) list.scrollTop = list.scrollHeight;
      };
    });
    window.addEventListener("pagehide", () => { if (stream) stream.close(); });
  }
  if (list && !list.hidden) list.scrollTop = list.scrollHeight;

  // ---- Notification channels: "Send test" shows what the channel answered.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-channel-test]");
    if (!button) return;
    event.preventDefault();
    const out = document.getElementById(button.getAttribute("aria-controls"));
    button.setAttribute("aria-busy", "true");
    out.className = "channel-result";
    out.textContent = page.sending;
    const result = await J.api("POST", button.dataset.channelTest);
    button.removeAttribute("aria-busy");
    if (result.status === 401) return J.toLogin();
    const d = result.data || {};
    const ok = result.ok && d.ok;
    out.classList.add(ok ? "is-ok" : "is-bad");
    if (ok) out.textContent = page.sent.replace("{code}", d.status_code ?? "—").replace("{attempts}", d.attempts ?? 1);
    else out.textContent = page.failed.replace("{error}", result.ok ? (d.error || ("HTTP " + d.status_code)) : result.message);
  });
})();
