// cyberslm analyst page: plain JS, no libraries, no outbound requests. All data is rendered
// with textContent, never innerHTML, so a hostile CVE description cannot inject markup.
"use strict";

const KEY_STORE = "cyberslm-api-key";
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { Authorization: "Bearer " + key } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { ...authHeaders(), ...(options.headers || {}) },
  });
  let body = null;
  try { body = await response.json(); } catch (e) { /* non-JSON error page */ }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    throw new Error(response.status + ": " + message);
  }
  return body;
}

function setStatus(id, text, isError = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

// ---- API key: entered once per browser session, sent as a bearer header ----
function showKeyState() {
  $("#key-state").textContent = sessionStorage.getItem(KEY_STORE) ? "key set" : "no key";
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  if (key) sessionStorage.setItem(KEY_STORE, key); else sessionStorage.removeItem(KEY_STORE);
  $("#api-key").value = "";
  showKeyState();
});

// ---- Triage ----
const CVE_PREFIX = /^\s*(CVE-\d{4}-\d{4,})\s*[:\t|-]\s*(.+)$/i;

function parseLines(text) {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const ids = [], texts = [];
  lines.forEach((line, i) => {
    const match = line.match(CVE_PREFIX);
    ids.push(match ? match[1].toUpperCase() : "line " + (i + 1));
    texts.push(match ? match[2] : line);
  });
  return { ids, texts };
}

function kbLink(id) {
  const link = el("a", { href: "#kb/" + id, class: "kb-link", "data-id": id, text: id });
  link.addEventListener("click", (event) => { event.preventDefault(); openKb(id); });
  return link;
}

function probCell(probability) {
  const pct = (100 * probability).toFixed(1) + "%";
  const fill = el("span", { class: "fill" });
  fill.style.width = pct; // CSSOM, not a style attribute: the page's CSP forbids inline styles
  return el("td", { class: "prob" }, el("span", { class: "bar" }, fill), el("span", { text: " " + pct }));
}

function renderTriage(results) {
  const tbody = $("#triage-table tbody");
  tbody.replaceChildren();
  for (const result of results) {
    // the ranked predictions, then any CWE the description names itself that was not predicted (no probability)
    const shown = result.predictions.map((p, rank) => [p, rank]).concat((result.stated || []).map((p) => [p, null]));
    shown.forEach(([p, rank]) => {
      const stated = rank === null;
      const why = el("td", { class: "why" });
      const ex = p.explanation || {};
      if (ex.summary) why.append(el("p", { text: ex.summary }));
      if (ex.consequence) why.append(el("p", { class: "sub", text: "Consequence: " + ex.consequence }));
      if (ex.mitigation) why.append(el("p", { class: "sub", text: "Mitigation: " + ex.mitigation }));
      if (ex.mapping === "Discouraged" || ex.mapping === "Prohibited")
        why.append(el("p", { class: "sub", text: "Mapping: " + ex.mapping + " by MITRE; a more specific child CWE may fit" }));
      const row = el("tr", { class: rank === 0 ? "first" : "" },
        el("td", { class: "cve", text: rank === 0 ? (result.id || "") : "" }),
        el("td", { text: stated ? "named" : String(rank + 1) }),
        el("td", {}, kbLink(p.cwe_id)),
        el("td", { text: p.name || "" }),
        stated ? el("td", { class: "prob", text: "named in the description; not predicted" }) : probCell(p.probability),
        why);
      if (rank === 0) row.title = result.description || "";
      tbody.append(row);
    });
  }
  $("#triage-table").hidden = false;
}

async function runTriage() {
  const { ids, texts } = parseLines($("#triage-input").value);
  if (!texts.length) { setStatus("#triage-status", "Paste at least one description.", true); return; }
  setStatus("#triage-status", "Triaging " + texts.length + " description(s)...");
  const started = performance.now();
  try {
    const body = await api("/v1/triage", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ texts, ids, k: Number($("#triage-k").value) }),
    });
    renderTriage(body.results);
    setStatus("#triage-status", body.results.length + " triaged in " + Math.round(performance.now() - started) + " ms");
  } catch (err) {
    setStatus("#triage-status", err.message, true);
  }
}

async function triageFeed(file) {
  setStatus("#triage-status", "Reading " + file.name + "...");
  try {
    const query = "?name=" + encodeURIComponent(file.name) + "&k=" + $("#triage-k").value;
    const body = await api("/v1/triage/feed" + query, {
      method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file,
    });
    renderTriage(body.results);
    setStatus("#triage-status", body.records + " record(s) from " + file.name + (body.truncated ? " (first ones only)" : ""));
  } catch (err) {
    setStatus("#triage-status", err.message, true);
  }
}

$("#triage-run").addEventListener("click", runTriage);
$("#feed-file").addEventListener("change", (e) => { if (e.target.files[0]) triageFeed(e.target.files[0]); });
const drop = $("#drop-zone");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) triageFeed(e.dataTransfer.files[0]);
});

// ---- Ask ----
function parseOptions(text) {
  const options = {};
  for (const line of text.split(/\r?\n/)) {
    const match = line.trim().match(/^([A-Za-z0-9])\s*[).:]\s*(.+)$/);
    if (match) options[match[1].toUpperCase()] = match[2];
  }
  return Object.keys(options).length ? options : null;
}

async function runAsk() {
  const question = $("#ask-question").value.trim();
  if (!question) { setStatus("#ask-status", "Type a question.", true); return; }
  setStatus("#ask-status", "Thinking...");
  try {
    const body = await api("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question, options: parseOptions($("#ask-options").value) }),
    });
    const box = $("#ask-answer");
    const letter = body.letter ? body.letter + ". " : "";
    const confidence = body.confidence != null ? " (confidence " + Number(body.confidence).toFixed(2) + ")" : "";
    box.querySelector(".answer").textContent = letter + body.answer + confidence;
    const list = box.querySelector(".sources");
    list.replaceChildren(...(body.sources || []).map((s) => el("li", {},
      kbLink(s.id), el("span", { text: " " + (s.name || "") + " " }),
      el("span", { class: "sub", text: s.kind + (s.score != null ? ", score " + Number(s.score).toFixed(2) : "") }),
      el("p", { class: "snippet", text: (s.text || "").slice(0, 300) }))));
    box.hidden = false;
    setStatus("#ask-status", "");
  } catch (err) {
    setStatus("#ask-status", err.message, true);
  }
}

$("#ask-run").addEventListener("click", runAsk);
$("#ask-question").addEventListener("keydown", (e) => { if (e.key === "Enter") runAsk(); });

// ---- Knowledge entry panel ----
async function openKb(id) {
  const panel = $("#kb-panel");
  $("#kb-title").textContent = id;
  $("#kb-meta").textContent = "loading...";
  $("#kb-body").replaceChildren();
  panel.hidden = false;
  try {
    const entry = await api("/v1/kb/" + encodeURIComponent(id));
    $("#kb-title").textContent = entry.id + " " + entry.name;
    $("#kb-meta").replaceChildren(el("span", { text: entry.kind + (entry.source ? " · " + entry.source : "") + " · " }),
      el("a", { href: entry.url, target: "_blank", rel: "noopener noreferrer", text: entry.url }));
    const body = $("#kb-body");
    body.append(el("p", { text: entry.description || "" }));
    if (entry.extended_description) body.append(el("p", { class: "sub", text: entry.extended_description }));
    for (const c of entry.consequences || []) {
      body.append(el("p", { class: "sub", text: "Consequence: " + c.scopes.join(", ") + ": " + c.impacts.join(", ") }));
    }
    for (const m of (entry.mitigations || []).slice(0, 3)) {
      body.append(el("p", { class: "sub", text: "Mitigation (" + m.phases.join(", ") + "): " + m.description }));
    }
  } catch (err) {
    $("#kb-meta").textContent = err.message;
  }
}

$("#kb-close").addEventListener("click", () => { $("#kb-panel").hidden = true; });
showKeyState();
