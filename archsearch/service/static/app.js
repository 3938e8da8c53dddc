// archsearch dashboard: hash-routed pages over the JSON API (/api/v1). No build step, no CDN.
"use strict";

const API = "/api/v1";
const COSTS = ["macs", "params", "activations"];
let timer = null;

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) =>
  ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const fmt = (v) => {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return esc(v);
  if (Number.isInteger(v) && Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + " M";
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
};
const gflops = (macs) => (macs / 1e9).toFixed(3);

function token() { return sessionStorage.getItem("archsearch-token") || ""; }

async function api(path, options = {}) {
  const headers = {"Accept": "application/json", ...(options.headers || {})};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (token()) headers["Authorization"] = "Bearer " + token();
  const r = await fetch(API + path, {...options, headers});
  const body = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function direction(name, objectives) {
  for (const o of objectives || []) {
    const [n, d] = o.split(":");
    if (n === name) return d;
  }
  if (COSTS.includes(name) || /latency|loss|seconds/.test(name)) return "min";
  return "max";
}

function label(name) {
  if (name === "macs") return "MACs (1 MAC = 1 FLOP)";
  if (name === "params") return "parameters";
  if (name.startsWith("latency")) return name + " (ms)";
  return name;
}

function schedule(fn, ms) {
  clearTimeout(timer);
  timer = setTimeout(fn, ms);
}

function show(html) { $("#page").innerHTML = html; }

function fail(e) {
  show(`<p class="error" id="error">${esc(e.message)}</p>`);
}

// ---- runs ------------------------------------------------------------------------------

async function runsPage() {
  show(`<h1>Runs</h1><table id="runs"><thead><tr><th>id</th><th>status</th><th>space</th>
    <th>strategy</th><th>objectives</th><th>budget</th><th>progress</th><th>created</th>
    </tr></thead><tbody></tbody></table>
    <h2>Submit a run</h2>
    <form id="submit"><label>space <select name="space"><option>hybrid</option></select>
    </label>
    <label>budget <input name="budget" value="1GFLOP" size="10"></label>
    <label>score <input name="score" value="entropy" size="12"></label>
    <label>strategy <select name="strategy"><option>evolution</option><option>random</option>
    <option>tpe</option></select></label>
    <label>trials <input name="trials" type="number" value="100" min="1" size="6"></label>
    <label>seed <input name="seed" type="number" value="0" min="0" size="4"></label>
    <button type="submit">Submit</button> <span id="submit-result"></span></form>`);
  $("#submit").addEventListener("submit", submitRun);
  await refreshRuns();
  const spaces = await api("/spaces");
  const select = $("#submit select[name=space]");
  if (select) {
    select.innerHTML = spaces.map((s) =>
      `<option ${s.name === "hybrid" ? "selected" : ""}>${esc(s.name)}</option>`).join("");
  }
}

async function refreshRuns() {
  if (!location.hash.match(/^#?\/?$/)) return;
  const runs = await api("/runs");
  const body = $("#runs tbody");
  if (!body) return;
  body.innerHTML = runs.map((r) => {
    const done = r.trials + r.failed + r.pruned;
    const pct = r.n_trials ? Math.min(100, (100 * done) / r.n_trials) : 0;
    return `<tr data-run="${r.id}"><td><a href="#/runs/${r.id}">${r.id}</a></td>
      <td class="status ${esc(r.status)}">${esc(r.status)}</td><td>${esc(r.space)}</td>
      <td>${esc(r.strategy)}</td><td>${esc(r.objectives)}</td><td>${esc(r.budget)}</td>
      <td><progress max="100" value="${pct}"></progress>
      <span class="done">${done}</span>/${r.n_trials ?? "–"}</td><td>${esc(r.created)}</td></tr>`;
  }).join("") || `<tr><td colspan="8">No runs yet.</td></tr>`;
  schedule(refreshRuns, 2000);
}

async function submitRun(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const body = {};
  for (const [k, v] of form.entries()) {
    if (v === "") continue;
    body[k] = ["trials", "seed"].includes(k) ? Number(v) : v;
  }
  const out = $("#submit-result");
  try {
    const run = await api("/runs", {method: "POST", body: JSON.stringify(body)});
    out.className = "ok";
    out.textContent = `run ${run.id} queued`;
    refreshRuns();
  } catch (e) {
    out.className = "error";
    out.textContent = e.message;
  }
}

// ---- one run ---------------------------------------------------------------------------

async function runPage(id) {
  const run = await api(`/runs/${id}`);
  const names = [...COSTS, ...run.metrics];
  const objectives = run.settings.objectives;
  const first = objectives.length ? objectives[0].split(":")[0] : names[names.length - 1];
  const options = (sel) => names.map((n) =>
    `<option ${n === sel ? "selected" : ""}>${esc(n)}</option>`).join("");
  show(`<h1>Run ${run.id} <span class="status ${esc(run.status)}" id="run-status">
    ${esc(run.status)}</span></h1>
    <p>${esc(run.space)} · ${esc(run.strategy)} · ${esc(run.objectives)} · ${esc(run.budget)}
    · <span id="run-progress">${run.trials}</span> of ${run.n_trials ?? "–"} trials
    <button id="cancel">Cancel</button> <button id="resume">Resume</button>
    <span id="action-result"></span></p>
    <div class="controls"><label>x <select id="x">${options("macs")}</select></label>
    <label>y <select id="y">${options(first)}</select></label>
    <label>colour <select id="color"><option value="">(none)</option>${options("")}</select>
    </label><label><input type="checkbox" id="zoo" checked> zoo networks</label></div>
    <div id="pareto" class="plot"></div><p class="hint">Click a point to open its
    architecture.</p><h2>Best so far</h2><div id="history" class="plot small"></div>`);
  for (const sel of ["#x", "#y", "#color", "#zoo"]) $(sel).addEventListener("change", () => drawRun(id));
  $("#cancel").addEventListener("click", () => act(id, "cancel"));
  $("#resume").addEventListener("click", () => act(id, "resume"));
  buttons(run.status);
  await drawRun(id);
}

function buttons(status) {
  $("#cancel").hidden = !["running", "queued"].includes(status);
  $("#resume").hidden = !["interrupted", "failed", "stale"].includes(status);
}

async function act(id, what) {
  const out = $("#action-result");
  try {
    const run = await api(`/runs/${id}/${what}`, {method: "POST"});
    out.className = "ok";
    out.textContent = `run ${run.id}: ${run.status}`;
    buttons(run.status);
    drawRun(id);
  } catch (e) {
    out.className = "error";
    out.textContent = e.message;
  }
}

async function drawRun(id) {
  const here = location.hash;
  const run = await api(`/runs/${id}`);
  const objectives = run.settings.objectives;
  const x = $("#x").value, y = $("#y").value, color = $("#color").value;
  const dx = direction(x, objectives), dy = direction(y, objectives);
  const query = new URLSearchParams({objectives: `${x}:${dx},${y}:${dy}`,
    with_zoo: $("#zoo").checked});
  const [front, page] = await Promise.all([
    api(`/runs/${id}/pareto?${query}`),
    api(`/runs/${id}/trials?limit=1000`),
  ]);
  if (location.hash !== here) return;
  const trials = page.trials;
  const frontRows = front.front.filter((r) => !r.zoo);
  const zoo = front.front.filter((r) => r.zoo);
  const hover = (r) => `${r.digest ? r.digest.slice(0, 12) : ""}<br>${gflops(r.macs)} GFLOPs` +
    `<br>${fmt(r.params)} params`;
  const traces = [
    {name: `trials (${trials.length} of ${page.total})`, mode: "markers", type: "scatter",
      x: trials.map((r) => r[x]), y: trials.map((r) => r[y]),
      customdata: trials.map((r) => r.digest), text: trials.map(hover),
      hovertemplate: "%{text}<extra></extra>",
      marker: color ? {color: trials.map((r) => r[color]), colorscale: "Viridis",
        showscale: true, colorbar: {title: color}, size: 6} : {color: "#9aa5b1", size: 6}},
    {name: `front (${frontRows.length})`, mode: "lines+markers", type: "scatter",
      line: {shape: "hv", color: "#d9480f"}, marker: {size: 9, color: "#d9480f"},
      x: frontRows.map((r) => r[x]), y: frontRows.map((r) => r[y]),
      customdata: frontRows.map((r) => r.digest), text: frontRows.map(hover),
      hovertemplate: "%{text}<extra>front</extra>"},
  ];
  if (zoo.length) {
    traces.push({name: "zoo", mode: "markers+text", type: "scatter", textposition: "top center",
      x: zoo.map((r) => r[x]), y: zoo.map((r) => r[y]), text: zoo.map((r) => r.zoo),
      customdata: zoo.map((r) => r.digest), marker: {symbol: "diamond", size: 10,
        color: "#1c7ed6"}, hovertemplate: "%{text}<extra>zoo</extra>"});
  }
  const layout = {margin: {t: 30}, xaxis: {title: {text: label(x)}, type: x === "macs" ||
    x === "params" ? "log" : "linear"}, yaxis: {title: {text: label(y)}},
    legend: {orientation: "h"}};
  const el = $("#pareto");
  await Plotly.react(el, traces, layout, {displaylogo: false, responsive: true});
  if (!el.dataset.bound) {
    el.on("plotly_click", (ev) => {
      const digest = ev.points[0].customdata;
      if (digest) location.hash = `#/arch/${digest}`;
    });
    el.dataset.bound = "1";
  }
  el.dataset.points = String(trials.length);
  el.dataset.front = String(frontRows.length);
  $("#run-status").textContent = run.status;
  buttons(run.status);
  $("#run-progress").textContent = run.trials;
  await drawHistory(id);
  if (["running", "queued"].includes(run.status)) schedule(() => drawRun(id), 3000);
}

async function drawHistory(id) {
  const h = await api(`/runs/${id}/history`);
  await Plotly.react($("#history"), [
    {name: h.metric, mode: "markers", x: h.index, y: h.value, marker: {color: "#9aa5b1",
      size: 5}},
    {name: `best (${h.direction})`, mode: "lines", x: h.index, y: h.best,
      line: {shape: "hv", color: "#d9480f"}},
  ], {margin: {t: 20}, xaxis: {title: {text: "trial"}}, yaxis: {title: {text: h.metric}},
    legend: {orientation: "h"}}, {displaylogo: false, responsive: true});
}

// ---- one architecture ------------------------------------------------------------------

async function archPage(digest) {
  const a = await api(`/architectures/${digest}`);
  const maxMacs = Math.max(...a.blocks.map((b) => b.macs), 1);
  const timed = a.latency_predictions.find((l) => l.block_ms);
  a.blocks.forEach((b, i) => { b.ms = timed ? timed.block_ms[i] : null; });
  const stages = {};
  for (const b of a.blocks) {
    const m = b.block.match(/^stages\[(\d+)\]/);
    const key = m ? `stage ${m[1]}` : b.block;
    (stages[key] = stages[key] || []).push(b);
  }
  const diagram = Object.entries(stages).map(([name, blocks]) => `<div class="stage">
    <div class="stage-name">${esc(name)}</div>${blocks.map((b) => `<div class="block"
    title="${esc(b.block)}" style="width:${8 + 150 * Math.sqrt(b.macs / maxMacs)}px">
    <b>${esc(b.type)}</b><br>${b.out_channels} ch, in ${b.in_shape[1]}×${b.in_shape[2]}<br>
    ${fmt(b.macs)} MACs · ${fmt(b.params)} p${b.ms === null ? "" :
      ` · ${b.ms.toFixed(3)} ms`}</div>`).join("")}</div>`).join("");
  const scores = a.trials.map((t) => `<tr><td><a href="#/runs/${t.run}">${t.run}</a></td>
    <td>${t.trial}</td><td>${esc(t.state)}</td><td>${Object.entries(t.scores || {}).map(
      ([k, v]) => `${esc(k)}=${fmt(v)}`).join(", ")}</td></tr>`).join("");
  const predicted = a.latency_predictions.map((l) => `<tr><td>${esc(l.device_name)}</td>
    <td><code>${esc(l.device.slice(0, 12))}</code></td><td>${l.predicted_ms === null ?
      "– (a block is not in its table)" : fmt(l.predicted_ms)}</td></tr>`)
    .join("");
  const latency = a.latency.map((l) => `<tr><td>${esc(l.device_name)}</td>
    <td>${fmt(l.median_ms)}</td><td>${fmt(l.predicted_ms)}</td><td>${esc(l.purpose)}</td>
    </tr>`).join("");
  show(`<h1 id="arch-title">${esc(a.summary)}</h1>
    <p><code id="arch-digest">${esc(a.digest)}</code></p>
    <p>${fmt(a.cost.params)} parameters · ${gflops(a.cost.macs)} GFLOPs (1 FLOP = 1 MAC) ·
    ${fmt(a.cost.activations)} activations</p>
    <p class="export">Export: ${[["py", "PyTorch source"], ["torchscript", "TorchScript"],
      ["onnx", "ONNX"], ["yaml", "YAML"], ["json", "JSON"]].map(([f, name]) =>
      `<a class="button" id="export-${f}" href="${API}/architectures/${a.digest}/export?format=${f}">
      ${name}</a>`).join(" ")}
    <span class="hint">(TorchScript and ONNX with random weights, seed 0; trained weights:
    <code>archsearch export ${a.digest.slice(0, 12)} --weights FILE</code>)</span></p>
    <h2>Stages and blocks</h2><p class="hint">Boxes sized by MACs; input resolution;
    ${timed ? `latency predicted on ${esc(timed.device_name)}` : "no latency table covers it"}.
    </p><div id="diagram">${diagram}</div>
    <h2>Scores</h2><table><thead><tr><th>run</th><th>trial</th><th>state</th>
    <th>values</th></tr></thead><tbody>${scores || "<tr><td colspan=4>none</td></tr>"}
    </tbody></table>
    <h2>Predicted latency</h2><table id="predicted"><thead><tr><th>device</th><th>key</th>
    <th>ms</th></tr></thead><tbody>${predicted ||
      "<tr><td colspan=3>no latency table (archsearch latency profile)</td></tr>"}</tbody>
    </table>
    <h2>Measured latency</h2><table><thead><tr><th>device</th><th>measured ms</th>
    <th>predicted ms</th><th>purpose</th></tr></thead><tbody>${latency ||
      "<tr><td colspan=4>not measured</td></tr>"}</tbody></table>`);
}

// ---- latency ---------------------------------------------------------------------------

async function latencyPage(key) {
  const devices = await api("/latency");
  if (!key) {
    show(`<h1>Latency tables</h1><table id="devices"><thead><tr><th>device</th><th>name</th>
      <th>entries</th><th>networks checked</th><th>correction error</th></tr></thead><tbody>
      ${devices.map((d) => `<tr><td><a href="#/latency/${d.key}">${esc(d.key)}</a></td>
      <td>${esc(d.name)}</td><td>${d.entries}</td><td>${d.networks}</td>
      <td>${d.fit_mape === null ? "–" : (100 * d.fit_mape).toFixed(1) + " %"}</td></tr>`)
        .join("") || "<tr><td colspan=5>No latency table yet (archsearch latency profile)." +
        "</td></tr>"}</tbody></table>`);
    return;
  }
  const t = await api(`/latency/${key}?limit=1`);
  const nets = t.networks.filter((n) => n.predicted_ms !== null);
  const device = devices.find((d) => d.key === key);
  show(`<h1>Latency: ${esc(device ? device.name : key)} <code>${esc(key)}</code></h1>
    <p>${t.total} table entries;
    ${nets.length} whole networks measured against their prediction.</p>
    <div id="latency" class="plot"></div>`);
  const top = Math.max(...nets.map((n) => Math.max(n.median_ms, n.predicted_ms)), 1);
  await Plotly.react($("#latency"), [
    {name: "networks", mode: "markers", x: nets.map((n) => n.predicted_ms),
      y: nets.map((n) => n.median_ms), text: nets.map((n) => n.digest.slice(0, 12)),
      customdata: nets.map((n) => n.digest), hovertemplate: "%{text}<extra></extra>"},
    {name: "measured = predicted", mode: "lines", x: [0, top], y: [0, top],
      line: {dash: "dot", color: "#868e96"}},
  ], {margin: {t: 20}, xaxis: {title: {text: "predicted (ms)"}},
    yaxis: {title: {text: "measured median (ms)"}}}, {displaylogo: false, responsive: true});
  $("#latency").on("plotly_click", (ev) => {
    const digest = ev.points[0].customdata;
    if (digest) location.hash = `#/arch/${digest}`;
  });
}

// ---- routing ---------------------------------------------------------------------------

async function route() {
  clearTimeout(timer);
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  try {
    if (parts[0] === "runs" && parts[1]) await runPage(parts[1]);
    else if (parts[0] === "arch" && parts[1]) await archPage(parts[1]);
    else if (parts[0] === "latency") await latencyPage(parts[1]);
    else await runsPage();
  } catch (e) {
    fail(e);
  }
}

const tokenInput = $("#token");
tokenInput.value = token();
tokenInput.addEventListener("change", () => sessionStorage.setItem("archsearch-token",
  tokenInput.value));
window.addEventListener("hashchange", route);
route();
