// proofmill operator console. Static: everything comes from this server's API, with the API
// key the operator typed in (sessionStorage only). Text from the server is only ever set as
// textContent, never as HTML.
"use strict";

const KEY_SLOT = "proofmill-api-key";
const POLL_MS = 2000;
let who = null; // { tenant, admin } once /v1/stats answered
let timers = [];
let watching = null; // AbortController of the event stream being read

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function key() {
  return sessionStorage.getItem(KEY_SLOT) || "";
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (key()) headers.Authorization = "Bearer " + key();
  if (options.body && !headers["Content-Type"]) headers["Content-Type"] = "application/json";
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch (_) { /* not JSON */ }
    const error = new ApiError(response.status, problem);
    if (response.status === 401) showBanner("This server needs an API key: " + error.message, true);
    throw error;
  }
  return response;
}

async function json(path, options) {
  return (await api(path, options)).json();
}

function showBanner(text, isError) {
  const b = $("banner");
  b.textContent = text;
  b.className = "banner" + (isError ? " error" : "");
  b.hidden = !text;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function fmtTime(t) {
  return t ? new Date(t).toLocaleTimeString() : "–";
}

function pct(x) {
  return x === null || x === undefined ? "–" : Math.round(x * 100) + "%";
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function row(...cells) {
  return el("tr", {}, ...cells.map((c) => el("td", {}, c)));
}

function jobLink(id) {
  return el("a", { href: "#/jobs/" + encodeURIComponent(id), class: "mono" }, id);
}

// A sparkline of `values` (0..max), newest on the right.
function sparkline(values, max, label) {
  const w = 120, h = 28;
  const s = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "spark", role: "img", "aria-label": label, preserveAspectRatio: "none" });
  const pts = values
    .map((v, i) => (v === null || v === undefined ? null : [i, v]))
    .filter(Boolean);
  if (pts.length > 1 && max > 0) {
    const step = w / Math.max(values.length - 1, 1);
    const d = pts.map(([i, v]) => `${(i * step).toFixed(1)},${(h - 1 - (Math.min(v, max) / max) * (h - 2)).toFixed(1)}`).join(" ");
    s.append(svg("polyline", { points: d, fill: "none", "stroke-width": 1.5 }));
  }
  s.append(svg("title", {}, label));
  return s;
}

// ---- Overview ----------------------------------------------------------------------------

async function refreshDevices() {
  const [list, running] = await Promise.all([
    json("/v1/devices"),
    json("/v1/jobs?status=running&limit=100" + (who && who.admin ? "&tenant=*" : "")).catch(() => ({ jobs: [] })),
  ]);
  const jobs = new Map(running.jobs.map((j) => [j.id, j]));
  const tiles = list.devices.map((d) => {
    const used = d.memory_total_bytes != null && d.memory_free_bytes != null ? d.memory_total_bytes - d.memory_free_bytes : null;
    const hist = d.history || [];
    const bar = el("div", { class: "bar" }, el("div", {}));
    if (used !== null && d.memory_total_bytes) bar.firstChild.style.width = Math.min(100, (100 * used) / d.memory_total_bytes).toFixed(1) + "%";
    const running = (d.jobs || []).map((id) => {
      const j = jobs.get(id);
      return el("li", {}, jobLink(id), j ? ` ${j.stage || j.status} ${Math.round(j.progress * 100)}%` : "");
    });
    return el("article", { class: "tile" + (d.usable ? "" : " unusable"), "data-device": d.id },
      el("h3", {}, `${d.id} · ${d.kind}`, el("span", { class: "node" }, d.node || "")),
      el("p", { class: "name" }, d.name + (d.engine ? ` (${d.engine})` : "")),
      d.usable ? null : el("p", { class: "reason" }, d.reason || "unusable"),
      el("dl", {},
        el("dt", {}, "memory"), el("dd", {}, `${fmtBytes(used)} of ${fmtBytes(d.memory_total_bytes)}`),
        el("dt", {}, "utilisation"), el("dd", {}, pct(d.utilization)),
        el("dt", {}, "temperature"), el("dd", {}, d.temperature_c == null ? "–" : d.temperature_c.toFixed(0) + " °C"),
        el("dt", {}, "power"), el("dd", {}, d.power_w == null ? "–" : d.power_w.toFixed(0) + " W")),
      bar,
      el("p", { class: "spark-label" }, "utilisation, last 3 min"),
      sparkline(hist.map((h) => h.utilization), 1, "utilisation, last minutes"),
      el("p", { class: "spark-label" }, "memory used"),
      sparkline(hist.map((h) => h.memory_used_bytes), d.memory_total_bytes || Math.max(1, ...hist.map((h) => h.memory_used_bytes || 0)), "memory used, last minutes"),
      el("ul", { class: "running" }, ...(running.length ? running : [el("li", { class: "idle" }, "idle")])));
  });
  $("devices").replaceChildren(...(tiles.length ? tiles : [el("p", {}, "no devices")]));
}

const PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#e11d48", "#84cc16"];

// Stacked bars per hour and tenant of `field` (proofs, device_seconds) into `target`.
function drawThroughput(stats, field, unit, target) {
  const hours = [];
  const start = Math.floor(Date.now() / 3600000) - stats.hours + 1;
  for (let h = 0; h < stats.hours; h++) hours.push((start + h) * 3600000);
  const tenants = [...new Set(stats.throughput.map((t) => t.tenant))].sort();
  const byHour = new Map(hours.map((h) => [h, new Map()]));
  for (const t of stats.throughput) {
    const h = Date.parse(t.hour);
    if (byHour.has(h)) byHour.get(h).set(t.tenant, t[field]);
  }
  const max = Math.max(1, ...[...byHour.values()].map((m) => [...m.values()].reduce((a, b) => a + b, 0)));
  const w = 720, h = 160, pad = 24, bw = (w - pad) / hours.length;
  const chart = svg("svg", { viewBox: `0 0 ${w} ${h + 20}`, class: "bars", role: "img", "aria-label": `${unit} per hour per tenant` });
  chart.append(svg("text", { x: 0, y: 12, class: "axis" }, String(Math.round(max * 10) / 10)));
  hours.forEach((hour, i) => {
    let y = h;
    tenants.forEach((tenant, ti) => {
      const n = byHour.get(hour).get(tenant) || 0;
      if (!n) return;
      const bh = (n / max) * (h - 16);
      y -= bh;
      const r = svg("rect", { x: pad + i * bw + 1, y, width: Math.max(bw - 2, 1), height: bh, fill: PALETTE[ti % PALETTE.length] });
      r.append(svg("title", {}, `${tenant}: ${Math.round(n * 10) / 10} ${unit}, hour of ${new Date(hour).toLocaleTimeString()}`));
      chart.append(r);
    });
    if (i % 6 === 0 || i === hours.length - 1) {
      chart.append(svg("text", { x: pad + i * bw, y: h + 14, class: "axis" }, new Date(hour).getHours() + ":00"));
    }
  });
  const legend = el("div", { class: "legend" }, ...tenants.map((t, ti) => {
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = PALETTE[ti % PALETTE.length];
    return el("span", {}, swatch, t);
  }));
  $(target).replaceChildren(chart, legend);
}

async function refreshStats() {
  const stats = await json("/v1/stats?hours=24");
  who = { tenant: stats.tenant, admin: stats.admin };
  $("who").textContent = `tenant ${stats.tenant}${stats.admin ? " (admin)" : ""}`;
  $("jobs-tenant-label").hidden = !stats.admin;
  $("hours").textContent = String(stats.hours);
  fill($("queue").tBodies[0], stats.queue.length
    ? stats.queue.map((q) => row(q.tenant, q.queued, q.running, fmtSeconds(q.oldest_wait_seconds)))
    : [row("nothing queued or running", "", "", "")]);
  const t = stats.totals;
  $("totals").replaceChildren(
    ...[["proofs", t.proofs], ["device time", fmtSeconds(t.device_seconds)], ["failed", t.failed],
      ["retried", t.retried], ["GPU fallbacks", t.gpu_fallbacks], ["lease expired", t.lease_expired]]
      .map(([k, v]) => el("div", { class: "total" }, el("b", {}, String(v)), el("span", {}, k))));
  drawThroughput(stats, "proofs", "proofs", "throughput-chart");
  drawThroughput(stats, "device_seconds", "device-seconds", "device-time-chart");
  const perTenant = new Map();
  for (const r of stats.throughput) {
    const a = perTenant.get(r.tenant) || { proofs: 0, secs: 0, failures: 0 };
    a.proofs += r.proofs; a.secs += r.device_seconds; a.failures += r.failures;
    perTenant.set(r.tenant, a);
  }
  fill($("tenant-time").tBodies[0], [...perTenant.entries()].map(([tn, a]) => row(tn, a.proofs, a.secs.toFixed(1), a.failures)));
  fill($("problems").tBodies[0], stats.problems.length
    ? stats.problems.map((p) => row(fmtTime(p.ended), jobLink(p.job), p.tenant, `${p.node}/${p.device}`,
      p.gpu_fallback ? "fallback" : p.outcome, p.detail || ""))
    : [row("none", "", "", "", "", "")]);
  $("usage-block").hidden = !stats.admin;
  if (stats.admin) {
    const usage = await json("/v1/usage");
    fill($("usage").tBodies[0], usage.usage.map((u) => row(u.tenant, u.device_kind, u.device_seconds.toFixed(1), u.jobs)));
  }
}

// ---- Jobs --------------------------------------------------------------------------------

async function refreshJobs() {
  const params = new URLSearchParams({ limit: "50" });
  if ($("jobs-status").value) params.set("status", $("jobs-status").value);
  if (who && who.admin && $("jobs-tenant").value) params.set("tenant", $("jobs-tenant").value);
  const list = await json("/v1/jobs?" + params);
  fill($("jobs").tBodies[0], list.jobs.map((j) => {
    const cancel = !["succeeded", "failed", "cancelled"].includes(j.status)
      ? el("button", { type: "button", class: "small danger", "data-cancel": j.id, onclick: () => cancelJob(j.id).then(refreshJobs) }, "Cancel")
      : "";
    const tr = row(jobLink(j.id), j.tenant, j.type, j.circuit || j.type, j.status, j.device || "–",
      fmtSeconds(j.timings.queued_seconds), fmtSeconds(j.timings.running_seconds), cancel);
    tr.dataset.job = j.id;
    tr.dataset.status = j.status;
    return tr;
  }));
}

async function cancelJob(id) {
  try {
    await api("/v1/jobs/" + encodeURIComponent(id), { method: "DELETE" });
    showBanner(`cancel of ${id} asked for`, false);
  } catch (e) {
    showBanner(`cancel ${id}: ${e.message}`, true);
  }
}

async function fetchProof(id) {
  return json("/v1/jobs/" + encodeURIComponent(id) + "/proof");
}

async function verifyProof(proof, target) {
  target.textContent = "verifying…";
  target.className = "verdict";
  try {
    const verdict = await json("/v1/verify", { method: "POST", body: JSON.stringify({ proof }) });
    target.textContent = verdict.valid ? "valid: the stock halo2 verifier accepts this proof" : "INVALID: " + (verdict.reason || "rejected");
    target.className = "verdict " + (verdict.valid ? "ok" : "bad");
  } catch (e) {
    target.textContent = "verification refused: " + e.message;
    target.className = "verdict bad";
  }
}

async function showJob(id) {
  $("job-id").textContent = id;
  $("job-verdict").textContent = "";
  const j = await json("/v1/jobs/" + encodeURIComponent(id));
  const fields = [["tenant", j.tenant], ["type", j.type], ["circuit", j.circuit || "–"], ["status", j.status],
    ["stage", j.stage || "–"], ["device", j.device ? `${j.node}/${j.device}` : "–"], ["transcript", j.transcript || "–"],
    ["queued", fmtSeconds(j.timings.queued_seconds)], ["ran", fmtSeconds(j.timings.running_seconds)],
    ["attempts", j.attempts], ["error", j.error || "–"], ["vk hash", j.vk_hash || "–"]];
  $("job-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, String(v))]));
  $("job-progress").style.width = Math.round(j.progress * 100) + "%";
  const done = j.status === "succeeded" && j.type !== "keygen";
  $("job-download").hidden = !done;
  $("job-verify").hidden = !done;
  $("job-cancel").hidden = ["succeeded", "failed", "cancelled"].includes(j.status);
  $("job-download").onclick = async () => {
    const proof = await fetchProof(id);
    const url = URL.createObjectURL(new Blob([JSON.stringify(proof, null, 2)], { type: "application/json" }));
    const a = el("a", { href: url, download: id + ".proof.json" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  };
  $("job-verify").onclick = async () => verifyProof(await fetchProof(id), $("job-verdict"));
  $("job-cancel").onclick = () => cancelJob(id).then(() => showJob(id));
  fill($("job-history").tBodies[0], (j.history || []).map((a) =>
    row(a.attempt, a.node, a.device, fmtTime(a.started), fmtTime(a.ended), a.outcome || "running", a.detail || "")));
}

// ---- Try it ------------------------------------------------------------------------------

async function loadCircuits() {
  const circuits = await json("/v1/circuits");
  const select = $("try-circuit");
  const chosen = select.value;
  select.replaceChildren(...circuits.map((c) => el("option", { value: c.name }, `${c.name} (k=${c.k})`)));
  if (chosen) select.value = chosen;
}

// Reads a job's server-sent events (fetch, so that the Authorization header goes along).
async function watchJob(id, onView) {
  if (watching) watching.abort();
  watching = new AbortController();
  const response = await api("/v1/jobs/" + encodeURIComponent(id) + "/events", { signal: watching.signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) onView(JSON.parse(data));
    }
  }
}

async function submitTry() {
  const status = $("try-status");
  $("try-verify").hidden = true;
  $("try-verdict").textContent = "";
  $("try-events").replaceChildren();
  let input;
  try {
    input = JSON.parse($("try-input").value);
  } catch (e) {
    status.textContent = "the input is not JSON: " + e.message;
    status.className = "status bad";
    return;
  }
  const body = { type: "prove", circuit: $("try-circuit").value, transcript: $("try-transcript").value, input };
  let accepted;
  try {
    accepted = await json("/v1/jobs", { method: "POST", body: JSON.stringify(body) });
  } catch (e) {
    status.textContent = "refused: " + e.message;
    status.className = "status bad";
    return;
  }
  const id = accepted.id;
  status.replaceChildren("job ", jobLink(id), " accepted");
  status.className = "status";
  status.dataset.job = id;
  let last = null;
  await watchJob(id, (view) => {
    last = view;
    $("try-progress").style.width = Math.round(view.progress * 100) + "%";
    $("try-events").append(el("li", {}, `${fmtTime(Date.now())} ${view.status}${view.stage ? " · " + view.stage : ""} ${Math.round(view.progress * 100)}%`));
    status.dataset.status = view.status;
  }).catch((e) => { if (e.name !== "AbortError") showBanner("event stream: " + e.message, true); });
  if (!last) return;
  status.replaceChildren("job ", jobLink(id), " " + last.status + (last.error ? ": " + last.error : ""));
  status.className = "status " + (last.status === "succeeded" ? "ok" : "bad");
  if (last.status === "succeeded") {
    $("try-verify").hidden = false;
    $("try-verify").onclick = async () => verifyProof(await fetchProof(id), $("try-verdict"));
  }
}

// ---- Routing -----------------------------------------------------------------------------

function every(fn, ms) {
  const run = () => fn().catch((e) => { if (!(e instanceof ApiError && e.status === 401)) showBanner(e.message, true); });
  run();
  timers.push(setInterval(run, ms));
}

function route() {
  timers.forEach(clearInterval);
  timers = [];
  const hash = location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean);
  const view = parts[0] === "jobs" && parts[1] ? "job" : parts[0] || "overview";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + view;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view || (view === "job" && a.dataset.view === "jobs"));
  if (view === "overview") {
    every(refreshStats, POLL_MS * 2);
    every(refreshDevices, POLL_MS);
  } else if (view === "jobs") {
    every(refreshJobs, POLL_MS);
  } else if (view === "job") {
    every(() => showJob(decodeURIComponent(parts[1])), POLL_MS);
  } else if (view === "try") {
    loadCircuits().catch((e) => showBanner(e.message, true));
  }
}

function init() {
  $("key-input").value = key();
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_SLOT, $("key-input").value.trim());
    showBanner("", false);
    who = null;
    route();
  });
  $("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_SLOT);
    $("key-input").value = "";
    who = null;
    $("who").textContent = "";
    route();
  });
  $("jobs-status").addEventListener("change", () => refreshJobs().catch((e) => showBanner(e.message, true)));
  $("jobs-tenant").addEventListener("change", () => refreshJobs().catch((e) => showBanner(e.message, true)));
  $("try-example").addEventListener("click", async () => {
    try {
      const seed = Math.floor(Math.random() * 1e9);
      const example = await json("/v1/examples/" + $("try-circuit").value + "?seed=" + seed);
      $("try-input").value = JSON.stringify(example, null, 1);
    } catch (e) {
      showBanner("example: " + e.message, true);
    }
  });
  $("try-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (file) $("try-input").value = await file.text();
  });
  $("try-submit").addEventListener("click", () => submitTry());
  window.addEventListener("hashchange", route);
  // Who the key belongs to decides what the jobs page offers.
  refreshStats().catch(() => {}).finally(route);
}

document.addEventListener("DOMContentLoaded", init);
