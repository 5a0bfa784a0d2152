// eddy's live dashboard: polls BASE/json every second and charts the rates
// between two samples (requests, bytes), the gauges (connections) and
// latency percentiles estimated from the duration histogram's change.
// Each chart marks itself data-points="N" once it has drawn N rows.
"use strict";

const BASE = document.body.dataset.base;
const POLL_MS = 1000;
const MAX_ROWS = 300; // five minutes at one sample a second
const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];

const charts = {
  requests: {labels: ["time", ...CLASSES],
             opts: {labelsKMB: true, colors: ["#7a7a7a", "#2e7d32", "#1565c0", "#ef6c00", "#c62828"]}},
  bandwidth: {labels: ["time", "in", "out"], opts: {labelsKMG2: true}},
  connections: {labels: ["time", "open", "idle"], opts: {labelsKMB: true}},
  latency: {labels: ["time", "p50", "p90", "p99"], opts: {}},
};
for (const [name, c] of Object.entries(charts)) {
  c.div = document.getElementById("chart-" + name);
  c.legend = document.getElementById("legend-" + name);
  c.rows = [];
  c.graph = null;
}

let prev = null;

// Estimates quantile q from cumulative bucket counts (as Prometheus's
// histogram_quantile does: linear within the bucket); null with no requests.
function quantile(q, le, counts) {
  const total = counts[counts.length - 1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let b = 0;
  while (b < counts.length - 1 && counts[b] < rank) b++;
  if (b >= le.length) return le[le.length - 1];
  const below = b > 0 ? counts[b - 1] : 0;
  const lower = b > 0 ? le[b - 1] : 0;
  const inside = counts[b] - below;
  return inside > 0 ? lower + (le[b] - lower) * ((rank - below) / inside) : le[b];
}

function sumRequests(t, cls) {
  let n = 0;
  for (const proto of Object.values(t.requests)) n += proto[cls];
  return n;
}

function human(n, unit) {
  const steps = ["", "k", "M", "G", "T"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < steps.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + " " + steps[i] + unit;
}

function plot(name, row) {
  const c = charts[name];
  c.rows.push(row);
  if (c.rows.length > MAX_ROWS) c.rows.shift();
  if (c.rows.length < 2) return;
  if (!c.graph) {
    c.graph = new Dygraph(c.div, c.rows, Object.assign({
      labels: c.labels, labelsDiv: c.legend, legend: "always", includeZero: true,
      strokeWidth: 1.5, connectSeparatedPoints: false, axisLabelFontSize: 11,
      axes: {y: {axisLabelWidth: 50}},
    }, c.opts));
  } else {
    c.graph.updateOptions({file: c.rows});
  }
  c.div.setAttribute("data-points", String(c.rows.length));
}

function sample(cur) {
  const t = cur.total;
  const when = new Date(cur.time * 1000);
  document.getElementById("now-workers").textContent = cur.workers.length;
  plot("connections", [when, t.connections.open, t.connections.idle]);
  document.getElementById("now-conns").textContent =
      t.connections.open + " / " + t.connections.idle;
  if (prev) {
    const p = prev.total;
    const dt = Math.max(cur.time - prev.time, 0.001);
    const rates = CLASSES.map(k => Math.max(sumRequests(t, k) - sumRequests(p, k), 0) / dt);
    plot("requests", [when, ...rates]);
    const bin = Math.max(t.bytes_in - p.bytes_in, 0) / dt;
    const bout = Math.max(t.bytes_out - p.bytes_out, 0) / dt;
    plot("bandwidth", [when, bin, bout]);
    const delta = t.duration.buckets.map((n, i) => n - p.duration.buckets[i]);
    const ms = q => { const s = quantile(q, cur.buckets_le, delta); return s === null ? null : s * 1000; };
    const p99 = ms(0.99);
    plot("latency", [when, ms(0.5), ms(0.9), p99]);
    document.getElementById("now-rps").textContent = human(rates.reduce((a, b) => a + b, 0), "");
    document.getElementById("now-bw").textContent = human(bin, "B/s") + " / " + human(bout, "B/s");
    document.getElementById("now-p99").textContent = p99 === null ? "\u2013" : p99.toFixed(2) + " ms";
  }
  prev = cur;
}

function setState(text, down) {
  const s = document.getElementById("state");
  s.textContent = text;
  s.className = down ? "down" : "";
}

async function poll() {
  try {
    const r = await fetch(BASE + "/json", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    sample(await r.json());
    setState("live, every second", false);
  } catch (e) {
    setState("cannot reach eddy (" + e.message + "); retrying", true);
  }
  setTimeout(poll, POLL_MS);
}

poll();
