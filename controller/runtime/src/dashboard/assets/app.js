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
        // Logged out, or the permission was taken away: show the page as it now is.
        if (response.status === 401 || response.status === 403) {
          window.location.reload();
          return null;
        }
        if (response.status !== 200) return null;
        var tag = response.headers.get("ETag") || etag;
        return response.text().then(function (text) {
          return { tag: tag, text: text };
        });
      })
      .then(function (answer) {
        if (!answer) return;
        var text = answer.text;
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var old = current();
        // Someone is typing in a filter: keep the page (and the old ETag, so the next
        // check brings the change).
        var active = document.activeElement;
        if (old && active && old.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) {
          return;
        }
        if (fresh && old) {
          old.replaceWith(document.importNode(fresh, true));
          etag = answer.tag;
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
