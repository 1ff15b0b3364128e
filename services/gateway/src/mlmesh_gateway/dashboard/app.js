// mlmesh dashboard: plain JS, no build step, no CDN. Every call sends the API key kept in
// sessionStorage; untrusted text is inserted with textContent only.
"use strict";

const STAGES = ["acquire", "profile", "prep", "train", "tune", "select", "docs", "git",
                "publish"];
const KEY_SLOT = "mlmesh.apiKey";
const state = { me: null, timer: null, stream: null, mlflow: "" };

// -- helpers ------------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style") el.style.cssText = v;  // CSSOM: allowed by the page's CSP
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
const $ = (sel) => document.querySelector(sel);
const fmtTime = (s) => (s ? new Date(s * 1000).toLocaleString() : "");
const fmtNum = (x, d = 4) => (typeof x === "number" ? x.toFixed(d) : "");
const statusEl = (s) => h("span", { class: `status status-${s}` }, s);
const apiKey = () => sessionStorage.getItem(KEY_SLOT) || "";

class ApiError extends Error {
  constructor(status, detail) { super(`${status}: ${detail}`); this.status = status; }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${apiKey()}`, ...(options.headers || {}) };
  if (options.body && typeof options.body !== "string") {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.body) };
  }
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) { signOut("Your key was refused; sign in again."); }
  if (!response.ok) {
    let detail = response.statusText;
    try { const body = await response.json(); detail = JSON.stringify(body.errors || body.detail); }
    catch (e) { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return response.status === 204 ? null : response.json();
}

function stopLive() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  if (state.stream) state.stream.abort();
  state.stream = null;
}

function every(ms, fn) {
  fn();
  state.timer = setInterval(fn, ms);
}

// Server-sent events over fetch, so the key travels in a header (EventSource cannot send one).
async function streamEvents(path, onEvent) {
  const controller = new AbortController();
  state.stream = controller;
  const response = await fetch(path, { headers: { Authorization: `Bearer ${apiKey()}` },
                                       signal: controller.signal });
  if (!response.ok || !response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let type = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) type = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trim());
        }
        if (data.length) onEvent(type, JSON.parse(data.join("\n")));
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") throw e;
  }
}

// Artifacts: fetched with the key, shown inert (images as blobs, HTML in a sandboxed frame).
function artifactPath(uri, exp) {
  const marker = `/projects/${exp.project}/experiments/${exp.experiment_id}/`;
  const at = (uri || "").indexOf(marker);
  return at < 0 ? "" : uri.slice(at + marker.length);
}

async function fetchArtifact(exp, relative) {
  const response = await fetch(
    `/v1/experiments/${encodeURIComponent(exp.experiment_id)}/artifacts/` +
    relative.split("/").map(encodeURIComponent).join("/"),
    { headers: { Authorization: `Bearer ${apiKey()}` } });
  if (!response.ok) throw new ApiError(response.status, "artifact not found");
  return response.blob();
}

async function openArtifact(exp, relative) {
  const blob = await fetchArtifact(exp, relative);
  const name = relative.split("/").pop();
  const body = $("#viewer-body");
  body.replaceChildren();
  $("#viewer-title").textContent = relative;
  if (/\.(html?|svg)$/i.test(name)) {
    const html = new Blob([await blob.text()], { type: "text/html" });
    body.append(h("iframe", { sandbox: "", src: URL.createObjectURL(html), title: name }));
  } else if (/\.(png|jpe?g|gif|webp)$/i.test(name)) {
    body.append(h("img", { src: URL.createObjectURL(blob), alt: name }));
  } else if (/\.(md|txt|json|csv|py|yaml|yml|log)$/i.test(name)) {
    body.append(h("pre", {}, (await blob.text()).slice(0, 500000)));
  } else {
    const a = h("a", { href: URL.createObjectURL(blob), download: name }, `Download ${name}`);
    body.append(h("p", {}, a));
  }
  $("#viewer").hidden = false;
}

function artifactLink(exp, uri, label) {
  const relative = artifactPath(uri, exp);
  if (!relative) return null;
  return h("a", { href: "#", class: "artifact", dataset: { path: relative },
                  onclick: (e) => { e.preventDefault(); openArtifact(exp, relative); } }, label);
}

// -- views --------------------------------------------------------------------------------
function timeline(stages) {
  const byName = Object.fromEntries((stages || []).map((s) => [s.name, s]));
  return h("div", { class: "timeline" }, STAGES.map((name) => {
    const s = byName[name];
    const pct = s ? (["finished", "skipped"].includes(s.status) ? 100 : s.percent || 0) : 0;
    const seg = h("div", { class: `seg ${s ? s.status : ""}`,
                           title: `${name}: ${s ? `${s.status} ${Math.round(pct)}%` : "waiting"}` },
                  h("span", { style: `width:${pct}%` }));
    return seg;
  }));
}

async function viewExperiments(view) {
  const canSubmit = state.me && state.me.role !== "viewer";
  const table = h("table", { id: "experiments" },
    h("thead", {}, h("tr", {}, ["experiment", "project", "status", "stages", "winner",
                                 "test score", "created"].map((t) => h("th", {}, t)))),
    h("tbody"));
  const error = h("p", { class: "error" });
  view.replaceChildren(h("h1", {}, "Experiments"), canSubmit ? submitForm(error) : "", error,
                       table);
  every(2000, async () => {
    try {
      const { experiments } = await api("/v1/experiments?limit=100");
      table.tBodies[0].replaceChildren(...experiments.map((e) => h("tr", {
        class: "clickable", dataset: { id: e.experiment_id },
        onclick: () => { location.hash = `#/experiments/${encodeURIComponent(e.experiment_id)}`; },
      }, h("td", {}, h("code", {}, e.experiment_id)), h("td", {}, e.project),
         h("td", {}, statusEl(e.status)), h("td", {}, timeline(e.stages)),
         h("td", {}, e.result.winner || ""),
         h("td", {}, e.result.test_score != null
           ? `${fmtNum(e.result.test_score)} ${e.result.metric || ""}` : ""),
         h("td", { class: "muted" }, fmtTime(e.created_at)))));
    } catch (e) { error.textContent = e.message; }
  });
}

function submitForm(error) {
  const dataset = h("input", { name: "dataset_uri", placeholder: "dataset URI (file://, https://, openml://...)", size: 48, required: true });
  const target = h("input", { name: "target", placeholder: "target (optional)" });
  const projects = state.me.projects.includes("*") ? [] : state.me.projects;
  const project = h("input", { name: "project", value: projects[0] || "default", size: 12 });
  const budget = h("input", { name: "time_budget_s", type: "number", min: 0, value: 120, size: 6 });
  return h("form", { class: "inline", id: "submit-form", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      const made = await api("/v1/experiments", { method: "POST", body: {
        dataset_uri: dataset.value, target: target.value, project: project.value,
        time_budget_s: Number(budget.value) } });
      location.hash = `#/experiments/${encodeURIComponent(made.experiment_id)}`;
    } catch (err) { error.textContent = `Not submitted: ${err.message}`; }
  } }, dataset, target, project, budget, h("button", { class: "primary", type: "submit" }, "Submit"));
}

function stageTable(exp) {
  const created = exp.created_at;
  const ends = exp.stages.map((s) => s.finished_at || s.started_at || created);
  const span = Math.max(1, Math.max(created, ...ends, Date.now() / 1000 * (exp.status === "running" ? 1 : 0)) - created);
  const byName = Object.fromEntries(exp.stages.map((s) => [s.name, s]));
  return h("table", { class: "stages", id: "stages" },
    h("thead", {}, h("tr", {}, ["stage", "status", "progress", "timeline", "message"].map((t) => h("th", {}, t)))),
    h("tbody", {}, STAGES.map((name) => {
      const s = byName[name];
      const pct = s ? (["finished", "skipped"].includes(s.status) ? 100 : s.percent || 0) : 0;
      const start = s && s.started_at ? (s.started_at - created) / span * 100 : 0;
      const end = s ? ((s.finished_at || Date.now() / 1000) - created) / span * 100 : 0;
      return h("tr", { dataset: { stage: name } }, h("td", {}, name),
        h("td", {}, s ? statusEl(s.status) : h("span", { class: "muted" }, "waiting")),
        h("td", {}, h("div", { class: "bar", title: `${Math.round(pct)}%` },
                      h("span", { style: `width:${pct}%` })), h("small", { class: "muted pct" }, `${Math.round(pct)}%`)),
        h("td", {}, s && s.started_at ? h("div", { class: "gantt" },
          h("span", { style: `left:${Math.max(0, start)}%;width:${Math.max(1, Math.min(100, end) - start)}%` })) : ""),
        h("td", { class: "muted" }, s ? s.message : ""));
    })));
}

function mlflowLink(runId, label) {
  if (!runId) return "";
  if (!state.mlflow) return h("code", {}, label || runId);
  return h("a", { href: `${state.mlflow}/#/runs/${encodeURIComponent(runId)}`, target: "_blank",
                  rel: "noopener noreferrer" }, label || runId);
}

function gitLink(git) {
  if (!git || !git.commit) return "";
  const remote = (git.remote || "").replace(/\.git$/, "");
  const text = `${git.commit.slice(0, 12)} on ${git.branch || ""}`;
  if (/^https:\/\//.test(remote)) {
    return h("a", { href: `${remote}/commit/${git.commit}`, target: "_blank",
                    rel: "noopener noreferrer" }, text);
  }
  return h("span", { title: git.repository || "" }, h("code", {}, text),
           h("span", { class: "muted" }, ` (${git.repository || "local repository"})`));
}

async function viewExperiment(view, id) {
  const title = h("h1", {}, "Experiment ", h("code", {}, id));
  const summary = h("div", { id: "summary" });
  const stages = h("div");
  const board = h("div");
  const links = h("div", { class: "links", id: "links" });
  const plots = h("div", { class: "plots", id: "plots" });
  const log = h("div", { class: "events", id: "event-log" });
  const error = h("p", { class: "error" });
  const actions = h("div");
  view.replaceChildren(title, error, summary, actions, h("h2", {}, "Stages"), stages,
                       h("h2", {}, "Leaderboard"), board, h("h2", {}, "Reports and links"), links,
                       h("h2", {}, "Plots"), plots, h("h2", {}, "Live events"), log);
  let exp = null;
  let artifactsShown = false;
  const render = async () => {
    try { exp = await api(`/v1/experiments/${encodeURIComponent(id)}`); }
    catch (e) { error.textContent = e.message; return; }
    summary.replaceChildren(h("p", {}, statusEl(exp.status), `  project ${exp.project} · created `,
      fmtTime(exp.created_at), exp.failure_reason ? h("span", { class: "error" }, ` · ${exp.failure_reason}`) : ""));
    actions.replaceChildren(state.me.role !== "viewer" && ["pending", "running"].includes(exp.status)
      ? h("button", { id: "cancel", onclick: async () => {
          await api(`/v1/experiments/${encodeURIComponent(id)}/cancel`, { method: "POST", body: { reason: "cancelled from the dashboard" } });
          render(); } }, "Cancel experiment") : "");
    stages.replaceChildren(stageTable(exp));
    const r = exp.result || {};
    const rows = r.leaderboard || [];
    board.replaceChildren(rows.length ? h("table", { id: "leaderboard" },
      h("thead", {}, h("tr", {}, ["rank", "family", "source", `CV ${r.metric || ""}`, "CV std", "fit s", "device", "MLflow run"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.map((row, i) => h("tr", {}, h("td", {}, i + 1), h("td", {}, row.family),
        h("td", {}, row.source || ""), h("td", {}, fmtNum(row.cv_mean)), h("td", {}, fmtNum(row.cv_std)),
        h("td", {}, fmtNum(row.fit_seconds, 1)), h("td", {}, row.device || ""),
        h("td", {}, mlflowLink(row.mlflow_run_id)))))) : h("p", { class: "muted" }, "No leaderboard yet."));
    if (r.test_score != null) {
      board.prepend(h("p", {}, "Winner ", h("b", {}, r.winner || ""), `: test ${r.metric || ""} = ${fmtNum(r.test_score)} (dummy baseline ${fmtNum(r.baseline_test_score)})`));
    }
    const items = [["report", r.report_uri], ["model card", r.model_card_uri],
      ["white paper", r.white_paper_uri], ["executive summary", r.executive_summary_uri],
      ["reproduction", r.reproduction_uri], ["profile", r.profile_uri], ["ONNX", r.onnx_uri]];
    links.replaceChildren(...items.map(([label, uri]) => artifactLink(exp, uri, label)).filter(Boolean),
      r.mlflow_run_id ? h("span", {}, "MLflow run: ", mlflowLink(r.mlflow_run_id)) : "",
      r.git && r.git.commit ? h("span", {}, " git commit: ", gitLink(r.git)) : "",
      r.registered_model ? h("span", { class: "muted" }, ` registry: ${r.registered_model} v${r.model_version} ${r.registry_alias || ""}`) : "");
    if (!artifactsShown && ["completed", "failed", "cancelled"].includes(exp.status)) {
      artifactsShown = true;
      showPlots(exp, plots).catch((e) => { plots.textContent = e.message; });
    }
  };
  await render();
  every(4000, render);
  streamEvents(`/v1/experiments/${encodeURIComponent(id)}/events`, (type, data) => {
    const line = type === "end" ? `end: ${data.status}`
      : `#${data.sequence} ${type}${data.stage ? ` [${data.stage}]` : ""} ${data.status || ""}` +
        (data.payload && data.payload.percent != null ? ` ${Math.round(data.payload.percent)}%` : "") +
        (data.payload && data.payload.message ? ` ${data.payload.message}` : "");
    log.append(h("div", { class: "event" }, line));
    log.scrollTop = log.scrollHeight;
    render();
  }).catch((e) => { log.append(h("div", { class: "error" }, e.message)); });
}

async function showPlots(exp, plots) {
  const { artifacts } = await api(`/v1/experiments/${encodeURIComponent(exp.experiment_id)}/artifacts`);
  const images = artifacts.filter((a) => /\.(png|jpe?g|svg)$/i.test(a.path)).slice(0, 24);
  const reports = artifacts.filter((a) => /\.html?$/i.test(a.path)).slice(0, 24);
  plots.replaceChildren(
    reports.length ? h("p", {}, "HTML reports: ", reports.map((a) => h("a", {
      href: "#", class: "artifact", onclick: (e) => { e.preventDefault(); openArtifact(exp, a.path); } }, a.path, " "))) : "",
    images.length ? "" : h("p", { class: "muted" }, "No plots."));
  for (const a of images) {
    try {
      const blob = await fetchArtifact(exp, a.path);
      const type = /\.svg$/i.test(a.path) ? "image/svg+xml" : blob.type;
      plots.append(h("img", { src: URL.createObjectURL(new Blob([blob], { type })), alt: a.path, title: a.path }));
    } catch (e) { /* skip a missing plot */ }
  }
}

async function viewOps(view) {
  const error = h("p", { class: "error" });
  const cards = h("div", { class: "cards" });
  const services = h("div");
  const lag = h("div");
  const drift = h("div");
  view.replaceChildren(h("h1", {}, "Operations"), error, cards, h("h2", {}, "Services"), services,
                       h("h2", {}, "Consumer lag"), lag, h("h2", {}, "Drift of published models"), drift);
  every(5000, async () => {
    let ops;
    try { ops = await api("/v1/ops"); } catch (e) { error.textContent = e.message; return; }
    error.textContent = "";
    state.mlflow = ops.mlflow_url || state.mlflow;
    const dlqOpen = Object.values(ops.dlq_open_by_topic).reduce((a, b) => a + b, 0);
    const totalLag = ops.consumer_lag.reduce((a, r) => a + (r.lag || 0), 0);
    const up = ops.services.filter((s) => s.status === "up").length;
    cards.replaceChildren(
      h("div", { class: "card" }, h("div", { class: "n", id: "services-up" }, `${up}/${ops.services.length}`), "services up"),
      h("div", { class: "card" }, h("div", { class: "n", id: "total-lag" }, totalLag), "messages of lag"),
      h("div", { class: "card" }, h("div", { class: "n", id: "dlq-open" }, dlqOpen), "open dead letters"),
      h("div", { class: "card" }, h("div", { class: "n" }, ops.drift.filter((d) => d.status === "drifting").length), "drifting models"));
    services.replaceChildren(h("table", { id: "services" },
      h("thead", {}, h("tr", {}, ["service", "status", "ready", "events in/s", "out/s", "failed", "in flight", "breakers"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ops.services.map((s) => {
        const m = s.metrics || {};
        const breakers = Object.entries(s.breakers || {});
        return h("tr", { dataset: { service: s.name } }, h("td", {}, s.name), h("td", {}, statusEl(s.status)),
          h("td", {}, s.ready ? "yes" : "no"), h("td", {}, m.in_per_s != null ? m.in_per_s.toFixed(2) : "…"),
          h("td", {}, m.out_per_s != null ? m.out_per_s.toFixed(2) : "…"), h("td", {}, m.events_failed ?? ""),
          h("td", {}, m.in_flight ?? ""),
          h("td", {}, breakers.length ? breakers.map(([n, st]) => h("div", {}, `${n}: `, statusEl(st))) : h("span", { class: "muted" }, "none")));
      }))));
    lag.replaceChildren(h("table", { id: "lag" },
      h("thead", {}, h("tr", {}, ["group", "topic", "lag", "end offset", "open DLQ"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ops.consumer_lag.map((r) => h("tr", {}, h("td", {}, r.group), h("td", {}, r.topic || r.error || ""),
        h("td", {}, r.lag ?? "?"), h("td", {}, r.end_offset ?? ""),
        h("td", {}, ops.dlq_open_by_topic[r.topic] || 0))))));
    drift.replaceChildren(ops.drift.length ? h("table", { id: "drift" },
      h("thead", {}, h("tr", {}, ["model", "version", "alias", "status", "share drifted", "columns", "checked"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ops.drift.map((d) => h("tr", {}, h("td", {}, d.model), h("td", {}, d.version), h("td", {}, d.alias || ""),
        h("td", {}, statusEl(d.status.replace(/ /g, "-"))), h("td", {}, d.share_drifted != null ? fmtNum(d.share_drifted, 2) : ""),
        h("td", {}, (d.drifted_columns || []).join(", ")), h("td", { class: "muted" }, fmtTime(d.checked_at))))))
      : h("p", { class: "muted" }, "No published models yet."));
  });
}

async function viewDlq(view) {
  const error = h("p", { class: "error" });
  const filter = h("select", { id: "dlq-status" }, ["open", "replayed", "purged", "any"].map((s) => h("option", { value: s }, s)));
  const table = h("div");
  const detail = h("div", { id: "dlq-detail" });
  const isAdmin = state.me.role === "admin";
  const load = async () => {
    let body;
    try { body = await api(`/v1/dlq?status=${filter.value}&limit=200`); } catch (e) { error.textContent = e.message; return; }
    error.textContent = "";
    table.replaceChildren(h("table", { id: "dead-letters" },
      h("thead", {}, h("tr", {}, ["id", "source topic", "experiment", "error", "status", "failed", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, body.dead_letters.map((d) => h("tr", { dataset: { id: d.id } },
        h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); showLetter(d.id, detail); } }, h("code", {}, d.id))),
        h("td", {}, d.source_topic), h("td", {}, d.experiment_id),
        h("td", {}, `${d.error_type}: ${d.error_message}`.slice(0, 160)), h("td", {}, statusEl(d.status)),
        h("td", { class: "muted" }, fmtTime(d.failed_at)),
        h("td", {}, isAdmin && d.status === "open" ? [
          h("button", { class: "replay", onclick: () => act(d.id, "replay") }, "Replay"), " ",
          h("button", { class: "purge", onclick: () => act(d.id, "purge") }, "Purge")] : ""))))));
  };
  const act = async (id, action) => {
    try { await api(`/v1/dlq/${encodeURIComponent(id)}/${action}`, { method: "POST" }); }
    catch (e) { error.textContent = `${action} failed: ${e.message}`; }
    await load();
  };
  filter.addEventListener("change", load);
  view.replaceChildren(h("h1", {}, "Dead letters"), h("p", {}, "status ", filter), error, table, detail);
  every(4000, load);
}

async function showLetter(id, detail) {
  const d = await api(`/v1/dlq/${encodeURIComponent(id)}`);
  detail.replaceChildren(h("h2", {}, `Dead letter ${d.id}`),
    h("p", {}, `${d.error_type}: ${d.error_message} (attempt ${d.attempt}, group ${d.consumer_group})`),
    h("pre", {}, d.stack || ""), h("pre", {}, JSON.stringify(d.envelope || d.decode_error, null, 2)));
}

// -- shell --------------------------------------------------------------------------------
function signOut(message) {
  sessionStorage.removeItem(KEY_SLOT);
  state.me = null;
  stopLive();
  $("#login-error").textContent = message || "";
  route();
}

async function route() {
  stopLive();
  const view = $("#view");
  if (!apiKey()) {
    $("#login").hidden = false; $("#nav").hidden = true; $("#signout").hidden = true;
    $("#whoami").textContent = ""; view.replaceChildren();
    return;
  }
  if (!state.me) {
    try { state.me = await api("/v1/whoami"); } catch (e) { $("#login-error").textContent = e.message; return; }
    state.mlflow = state.me.mlflow_url || "";
  }
  $("#login").hidden = true; $("#nav").hidden = false; $("#signout").hidden = false;
  $("#whoami").textContent = `${state.me.name || state.me.key_id} · ${state.me.role} · ${state.me.projects.join(", ")}`;
  const [page, arg] = location.hash.replace(/^#\//, "").split("/");
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.route === (page || "experiments"));
  if (page === "ops") return viewOps(view);
  if (page === "dlq") return viewDlq(view);
  if (page === "experiments" && arg) return viewExperiment(view, decodeURIComponent(arg));
  return viewExperiments(view);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_SLOT, $("#api-key").value.trim());
    $("#api-key").value = "";
    $("#login-error").textContent = "";
    route();
  });
  $("#signout").addEventListener("click", () => signOut(""));
  $("#viewer-close").addEventListener("click", () => { $("#viewer").hidden = true; $("#viewer-body").replaceChildren(); });
  window.addEventListener("hashchange", route);
  route();
});
