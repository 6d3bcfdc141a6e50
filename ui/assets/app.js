// The overview's charts and stream status. htmx keeps the stream open and
// swaps the overview fragment; this file draws the "rates" points with uPlot.
(function () {
  "use strict";
  var charts = {}; // name -> {plot, data, series}
  var lastSeq = 0;
  var keepSeconds = 3600;

  function chartFor(kind, name, labels) {
    var key = kind + ":" + name;
    if (charts[key]) return charts[key];
    var box = document.createElement("figure");
    box.className = "chart";
    box.dataset.chart = key;
    var cap = document.createElement("figcaption");
    cap.textContent = (kind === "d" ? "destination " : "source ") + name + " · events/s";
    box.appendChild(cap);
    document.getElementById("charts").appendChild(box);
    var colors = ["#2e7d32", "#ef6c00", "#c62828"];
    var series = [{}];
    labels.forEach(function (l, i) { series.push({ label: l, stroke: colors[i], width: 1.5 }); });
    var data = [[]];
    labels.forEach(function () { data.push([]); });
    // The time axis spans at least the last ten minutes, so that a chart
    // of a few points does not stretch them over years.
    var x = { time: true, range: function (u, min, max) { return [Math.min(min, max - 600), max]; } };
    var plot = new uPlot({ width: 560, height: 180, series: series, scales: { x: x }, legend: { live: false } }, data, box);
    charts[key] = { plot: plot, data: data };
    return charts[key];
  }

  function add(p) {
    if (p.seq <= lastSeq) return;
    lastSeq = p.seq;
    each(p.s, "s", ["received", "rejected"], p.t);
    each(p.d, "d", ["delivered", "retried", "dead-lettered"], p.t);
  }

  function each(m, kind, labels, t) {
    Object.keys(m || {}).sort().forEach(function (name) {
      var c = chartFor(kind, name, labels);
      c.data[0].push(t);
      m[name].forEach(function (v, i) { c.data[i + 1].push(v); });
      while (c.data[0].length && c.data[0][0] < t - keepSeconds) c.data.forEach(function (s) { s.shift(); });
      c.dirty = true;
    });
  }

  function redraw() {
    Object.keys(charts).forEach(function (k) {
      var c = charts[k];
      if (c.dirty) { c.plot.setData(c.data); c.dirty = false; }
    });
  }

  function setStatus(state, text) {
    var el = document.getElementById("stream-status");
    el.dataset.state = state;
    el.textContent = text;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var hist = JSON.parse(document.getElementById("history").textContent || "[]");
    hist.forEach(add);
    redraw();
    var live = document.getElementById("live");
    live.addEventListener("rates", function (e) { add(JSON.parse(e.detail.data)); redraw(); });
    live.addEventListener("dropped", function (e) {
      var el = document.getElementById("stream-dropped");
      el.hidden = false;
      el.textContent = JSON.parse(e.detail.data).dropped + " updates dropped from this view";
    });
    live.addEventListener("htmx:sse:after:connection", function () { setStatus("live", "live"); });
    live.addEventListener("htmx:sse:after:message", function () { setStatus("live", "live"); });
    live.addEventListener("htmx:sse:error", function () { setStatus("reconnecting", "reconnecting…"); });
    live.addEventListener("htmx:sse:close", function () { setStatus("closed", "stream closed"); });
  });
})();
