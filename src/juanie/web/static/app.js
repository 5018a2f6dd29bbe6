// Juanie UI behaviour: API forms and buttons (session cookie + CSRF header), sign-in, live lists over SSE.
// Pages are rendered on the server; this file only adds what a browser cannot do with plain HTML.
"use strict";

(function () {
  const messages = JSON.parse(document.getElementById("juanie-i18n")?.textContent || "{}");
  const t = (key) => messages[key] || key;

  function cookie(name) {
    const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  async function api(method, url, body, extraHeaders) {
    const headers = Object.assign({ Accept: "application/json" }, extraHeaders || {});
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && !headers.Authorization) headers["X-CSRF-Token"] = cookie("juanie_csrf");
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (err) {
      return { ok: false, status: 0, message: t("network_error") };
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    let message = data && data.error ? data.error.message : response.statusText;
    // A route this server does not have (yet) answers a bare "Not Found": say so in words.
    const missing = (response.status === 404 || response.status === 405) && (!data || !data.error || data.error.message === "Not Found" || data.error.message === "Method Not Allowed");
    if (missing) message = t("not_available");
    return { ok: response.ok, status: response.status, data, message, missing };
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(values[key] ?? ""));
  }

  function fillable(template, values) {
    return Array.from(template.matchAll(/\{(\w+)\}/g)).every((m) => values[m[1]] !== undefined && values[m[1]] !== null && values[m[1]] !== "");
  }

  function toLogin() {
    window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }

  // Collect a form into a JSON body. data-type="int"|"bool" convert; empty data-skip-empty fields are left out.
  // Meta fields: __kind + __who become {<kind>: who}; __path_<name> fills {name} in the URL.
  function collect(form) {
    const body = {};
    const path = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      const type = el.dataset.type;
      let value;
      if (type === "bool") value = el.checked;
      else if (el.type === "checkbox") value = el.checked;
      else if (type === "int") {
        if (el.value.trim() === "") continue;
        value = Number.parseInt(el.value, 10);
      } else value = el.value;
      if (el.name.startsWith("__path_")) { path[el.name.slice(7)] = value; continue; }
      if (typeof value === "string" && value.trim() === "" && el.hasAttribute("data-skip-empty")) continue;
      body[el.name] = value;
    }
    if ("__kind" in body) {
      body[body.__kind] = body.__who;
      delete body.__kind;
      delete body.__who;
    }
    return { body, path };
  }

  function showError(scope, message) {
    const box = scope.querySelector(".form-error");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    } else {
      toast(message);
    }
  }

  function toast(message) {
    let region = document.getElementById("toast");
    if (!region) {
      region = document.createElement("div");
      region.id = "toast";
      region.className = "form-error";
      region.setAttribute("role", "alert");
      document.querySelector("main").prepend(region);
    }
    region.textContent = message;
  }

  async function afterSuccess(then, result, values) {
    if (then === "stay") return document.dispatchEvent(new CustomEvent("juanie:acted", { detail: result }));
    if (!then || then === "reload") return window.location.reload();
    if (then.startsWith("go:")) {
      const all = Object.assign({}, values, result.data || {});
      // An answer without the fields the target needs (another API version): show the current page again.
      if (!fillable(then.slice(3), all)) return window.location.reload();
      return window.location.assign(fill(then.slice(3), all));
    }
    if (then === "show-token") {
      const box = document.getElementById("token-once");
      document.getElementById("token-value").textContent = result.data.token;
      box.hidden = false;
      box.focus();
    }
  }

  function askReason(el) {
    if (!el.dataset.reason) return "";
    const reason = window.prompt(t("reason"), "");
    if (reason === null) return null;
    if (!reason.trim()) { toast(t("reason_required")); return null; }
    return reason.trim();
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.dataset.login) return signIn(event, form);
    if (!form.dataset.api) return;
    event.preventDefault();
    const error = form.querySelector(".form-error");
    if (error) error.hidden = true;
    const { body, path } = collect(form);
    const submit = form.querySelector("[type=submit]");
    if (submit) submit.setAttribute("aria-busy", "true");
    const result = await api(form.dataset.method || "POST", fill(form.dataset.api, path), body);
    if (submit) submit.removeAttribute("aria-busy");
    if (result.status === 401) return toLogin();
    if (!result.ok) return showError(form, result.message);
    if (form.dataset.then === "show-token") form.reset();
    afterSuccess(form.dataset.then, result, body);
  });

  document.addEventListener("click", async (event) => {
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      const source = document.querySelector(copy.dataset.copy);
      try { await navigator.clipboard.writeText(source.textContent); copy.textContent = t("copied"); } catch (err) {
        const range = document.createRange(); range.selectNodeContents(source);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
      }
      return;
    }
    const button = event.target.closest("button[data-api]");
    if (!button) return;
    event.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const reason = askReason(button);
    if (reason === null) return;
    button.setAttribute("aria-busy", "true");
    let body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    if (button.dataset.reason) body = Object.assign(body || {}, { reason });
    const result = await api(button.dataset.method || "POST", button.dataset.api, body);
    button.removeAttribute("aria-busy");
    if (result.status === 401 && button.dataset.then !== "go:/login") return toLogin();
    if (!result.ok && button.dataset.then !== "go:/login") return toast(result.message);
    afterSuccess(button.dataset.then, result, {});
  });

  // Sign-in: a password goes to /api/auth/login as HTTP Basic; a pasted API token is exchanged at /api/ui/session.
  async function signIn(event, form) {
    event.preventDefault();
    const error = form.querySelector(".form-error");
    error.hidden = true;
    const submit = form.querySelector("[type=submit]");
    const label = submit.textContent;
    submit.setAttribute("aria-busy", "true");
    submit.textContent = t("signing_in");
    let result;
    if (form.dataset.login === "password") {
      const user = form.elements.username.value.trim();
      const basic = btoa(String.fromCharCode(...new TextEncoder().encode(user + ":" + form.elements.password.value)));
      result = await api("POST", "/api/auth/login", { session: true, token_name: "web" }, { Authorization: "Basic " + basic });
    } else {
      result = await api("POST", "/api/ui/session", undefined, { Authorization: "Bearer " + form.elements.token.value.trim() });
    }
    submit.removeAttribute("aria-busy");
    submit.textContent = label;
    if (!result.ok) {
      error.textContent = result.message;
      error.hidden = false;
      return;
    }
    window.location.assign(form.dataset.next || "/");
  }

  // Tabs (login): click or arrow keys switch the panel.
  const tabs = Array.from(document.querySelectorAll("[role=tab][data-tab]"));
  function selectTab(tab) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.dataset.tab).hidden = !selected;
    }
    tab.focus();
    const first = document.getElementById(tab.dataset.tab).querySelector("input");
    if (first) first.focus();
  }
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      selectTab(tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length]);
    });
  }

  window.Juanie = { api, t, toast, toLogin };

  // Live lists: rows rendered by the server arrive over SSE and are prepended.
  for (const list of document.querySelectorAll("[data-live-list][data-live-src]")) {
    const src = list.dataset.liveSrc;
    if (!src || !window.EventSource) continue;
    const status = document.querySelector("[data-live-status]");
    const max = Number.parseInt(list.dataset.liveMax || "200", 10);
    const stream = new EventSource(src);
    stream.onopen = () => { if (status) { status.textContent = t("live"); status.classList.remove("is-down"); } };
    stream.onerror = () => { if (status) { status.textContent = t("reconnecting"); status.classList.add("is-down"); } };
    stream.onmessage = (message) => {
      const item = JSON.parse(message.data);
      if (list.querySelector(`[data-event-id="${item.id}"]`)) return;
      const holder = document.createElement("template");
      holder.innerHTML = item.html.trim();
      const row = holder.content.firstElementChild;
      row.classList.add("is-new");
      list.prepend(row);
      for (const empty of document.querySelectorAll("[data-live-empty]")) empty.remove();
      while (list.children.length > max) list.lastElementChild.remove();
    };
    window.addEventListener("pagehide", () => stream.close());
  }
})();
