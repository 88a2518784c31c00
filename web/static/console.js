// This file runs in the browser, where `window` is the global object.
// deno-lint-ignore-file no-window no-window-prefix
// Portcullis console enhancements. Every page works without this file; with
// it, events arrive live (server-sent events), selects submit on change and
// copy buttons copy. No build step, no dependencies besides htmx.
(function () {
  "use strict";
  let source = null;
  let sourceUrl = null;

  if (window.htmx) {
    // Show error pages (4xx/5xx) too, so a refused action explains itself.
    window.htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: ".*", swap: true },
    ];
  }

  function toast(text) {
    const box = document.getElementById("toasts");
    if (!box || !text) return;
    const el = document.createElement("div");
    el.className = "toast";
    el.textContent = text;
    box.appendChild(el);
    setTimeout(() => el.remove(), 6000);
  }

  function onNotification(ev) {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    const feed = document.getElementById("live-feed");
    if (feed && data.html) {
      const filter = feed.getAttribute("data-filter") || "";
      if (!filter || filter === data.type) {
        const tpl = document.createElement("template");
        tpl.innerHTML = data.html.trim();
        const node = tpl.content.firstElementChild;
        if (node && !document.getElementById(node.id)) {
          node.classList.add("is-new");
          feed.prepend(node);
          const empty = feed.querySelector(".feed-empty");
          if (empty) empty.remove();
        }
      }
    }
    toast(data.toast);
    document.body.dispatchEvent(new CustomEvent("pc:" + data.type, { bubbles: true }));
    document.body.dispatchEvent(new CustomEvent("pc:any", { bubbles: true }));
  }

  function connect() {
    const holder = document.querySelector("[data-live]");
    const url = holder ? holder.getAttribute("data-live") : null;
    if (url === sourceUrl) return;
    if (source) source.close();
    source = null;
    sourceUrl = url;
    if (!url || !window.EventSource) return;
    source = new EventSource(url);
    source.addEventListener("notification", onNotification);
    source.addEventListener(
      "open",
      () => document.documentElement.setAttribute("data-live-state", "open"),
    );
    source.addEventListener(
      "error",
      () => document.documentElement.setAttribute("data-live-state", "error"),
    );
  }

  document.addEventListener("change", (ev) => {
    const el = ev.target;
    if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
      el.form.requestSubmit();
    }
  });

  document.addEventListener("click", async (ev) => {
    const btn = ev.target instanceof Element ? ev.target.closest("[data-copy]") : null;
    if (!btn) return;
    const src = document.getElementById(btn.getAttribute("data-copy"));
    if (!src) return;
    const text = src.textContent || "";
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const range = document.createRange();
      range.selectNodeContents(src);
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      document.execCommand("copy");
    }
    const old = btn.textContent;
    btn.textContent = btn.getAttribute("data-copied") || old;
    setTimeout(() => (btn.textContent = old), 2000);
  });

  // "Restart service": the page names the old pid; poll the status until a
  // different process answers, then go on (the old one stops first, so
  // failed fetches in between are expected).
  let restartWait = null;
  function waitRestart() {
    const el = document.querySelector("[data-restart-from-pid]");
    if (!el || restartWait) return;
    const old = el.getAttribute("data-restart-from-pid");
    const next = el.getAttribute("data-restart-next") || "/";
    restartWait = setInterval(async () => {
      try {
        const res = await fetch("/api/v1/status", { cache: "no-store" });
        const s = await res.json();
        if (res.ok && String(s.pid) !== old) {
          clearInterval(restartWait);
          location.assign(next);
        }
      } catch {
        // Not back yet.
      }
    }, 500);
  }

  function ready() {
    connect();
    waitRestart();
  }
  document.addEventListener("DOMContentLoaded", ready);
  document.addEventListener("htmx:afterSettle", ready);
  if (document.readyState !== "loading") ready();
})();
