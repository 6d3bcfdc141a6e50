// The live events panel: one stream carries the tap's events ("tap") and
// the count the server dropped for this view ("tap-dropped"). Pause holds
// new rows back and counts them; a click on a row opens the event.
(function () {
  "use strict";
  var maxRows = 500;
  var paused = false;
  var held = [];
  var heldCount = 0;

  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text || "";
    tr.appendChild(td);
  }

  function row(e) {
    var tr = document.createElement("tr");
    tr.dataset.partition = e.partition;
    tr.dataset.offset = e.offset;
    tr.dataset.messageId = e.messageId;
    cell(tr, e.time);
    cell(tr, e.type);
    cell(tr, e.event);
    cell(tr, e.userId || (e.anonymousId ? "anon " + e.anonymousId : ""));
    cell(tr, e.source);
    cell(tr, e.messageId);
    return tr;
  }

  function show(rows) {
    var body = document.querySelector("#events tbody");
    rows.forEach(function (e) { body.insertBefore(row(e), body.firstChild); });
    while (body.rows.length > maxRows) body.deleteRow(body.rows.length - 1);
  }

  function setHeld() {
    var b = document.getElementById("paused-count");
    b.hidden = heldCount === 0;
    b.textContent = heldCount + " new — show";
  }

  function resume() {
    paused = false;
    document.getElementById("pause").textContent = "Pause";
    show(held);
    held = [];
    heldCount = 0;
    setHeld();
  }

  function setStatus(state, text) {
    var el = document.getElementById("stream-status");
    el.dataset.state = state;
    el.textContent = text;
  }

  function open(tr) {
    var prev = document.querySelector("#events tr.open");
    if (prev) prev.classList.remove("open");
    tr.classList.add("open");
    var detail = document.getElementById("event-detail");
    fetch("/ui/live/event?partition=" + encodeURIComponent(tr.dataset.partition) + "&offset=" + encodeURIComponent(tr.dataset.offset))
      .then(function (r) { return r.text().then(function (t) { return { ok: r.ok, text: t }; }); })
      .then(function (r) {
        if (r.ok) { detail.innerHTML = r.text; } else { detail.textContent = r.text; }
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("events");
    if (!table) return;
    document.getElementById("pause").addEventListener("click", function () {
      if (paused) { resume(); return; }
      paused = true;
      this.textContent = "Resume";
    });
    document.getElementById("paused-count").addEventListener("click", resume);
    table.querySelector("tbody").addEventListener("click", function (ev) {
      var tr = ev.target.closest("tr");
      if (tr) open(tr);
    });
    var es = new EventSource(table.dataset.stream);
    es.onopen = function () { setStatus("live", "live"); };
    es.onerror = function () { setStatus("reconnecting", "reconnecting…"); };
    es.addEventListener("tap", function (m) {
      var e = JSON.parse(m.data);
      if (paused) {
        held.push(e);
        if (held.length > maxRows) held.shift();
        heldCount++;
        setHeld();
        return;
      }
      show([e]);
    });
    es.addEventListener("tap-dropped", function (m) {
      var el = document.getElementById("tap-dropped");
      el.hidden = false;
      el.textContent = "dropped " + JSON.parse(m.data).dropped + " events the view could not keep up with";
    });
  });
})();
