// Leadstream live view: follows /ui/feed (server-sent events) and says when it goes stale.
// No library; the rows arrive rendered (and escaped) by the server.
"use strict";
(function () {
  var STALE_MS = 6000;  // three missed pings (the server pings every 2 s)
  var status = document.getElementById("live-status");
  var list = document.getElementById("feed");
  var heard = 0;
  function show() {
    if (!status) return;
    var age = heard ? Math.round((Date.now() - heard) / 1000) : null;
    var stale = !heard || Date.now() - heard > STALE_MS;
    status.classList.toggle("stale", stale);
    status.textContent = stale
      ? (heard ? "stale: nothing heard for " + age + " s" : "stale: connecting…")
      : "live";
    status.dataset.state = stale ? "stale" : "live";
  }
  var source = new EventSource("/ui/feed");
  source.addEventListener("ping", function () { heard = Date.now(); show(); });
  source.addEventListener("transition", function (event) {
    heard = Date.now();
    show();
    if (!list) return;
    var row = document.createElement("template");
    row.innerHTML = JSON.parse(event.data).html;
    var item = row.content.firstElementChild;
    if (!item || list.querySelector('[data-id="' + item.dataset.id + '"]')) return;
    item.classList.add("new");
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 100) list.removeChild(list.lastChild);
  });
  source.onerror = function () { show(); };
  setInterval(show, 1000);
  show();
})();
