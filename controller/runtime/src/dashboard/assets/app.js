// patchfleet dashboard: keeps an open page current. The server renders everything; this
// script only asks, every `data-refresh` seconds, whether what the page shows changed
// (If-None-Match with the page's ETag) and, when it did, swaps in the new <main>.
// Served from /assets (the Content-Security-Policy allows no inline script).
"use strict";
(function () {
  function current() {
    return document.querySelector("main[data-refresh]");
  }
  var main = current();
  if (!main) return;
  var every = Number(main.getAttribute("data-refresh")) * 1000;
  if (!every) return;
  var etag = main.getAttribute("data-etag") || "";

  function poll() {
    fetch(window.location.href, {
      headers: { "If-None-Match": etag, Accept: "text/html" },
      credentials: "same-origin",
      cache: "no-store",
    })
      .then(function (response) {
        if (response.status === 401) {
          window.location.reload();
          return null;
        }
        if (response.status !== 200) return null;
        etag = response.headers.get("ETag") || etag;
        return response.text();
      })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var old = current();
        if (fresh && old) {
          old.replaceWith(document.importNode(fresh, true));
          document.documentElement.setAttribute("data-updated", String(Date.now()));
        }
      })
      .catch(function () {
        // The server is away for a moment (a rollout): the next check tries again.
      })
      .then(function () {
        window.setTimeout(poll, every);
      });
  }
  window.setTimeout(poll, every);
})();
