// pando serve: live updates (server-sent events), streamed prompts, permission answers.
// Plain JavaScript, no build step; every page also reads well without it.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

function post(url, body) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf() },
    body: JSON.stringify(body || {}),
  });
}

// -- live fragments: [data-live="table,table"] is re-fetched from data-src when they change -------
const refreshing = new Map();
async function refresh(el) {
  if (refreshing.get(el)) { refreshing.set(el, "again"); return; }
  refreshing.set(el, "busy");
  try {
    const response = await fetch(el.dataset.src, { headers: { accept: "text/html" } });
    if (response.ok) el.innerHTML = await response.text();
  } finally {
    const again = refreshing.get(el) === "again";
    refreshing.delete(el);
    if (again) refresh(el);
  }
}

const seenPermissions = new Set();
function onLiveEvent(event) {
  if (event.type === "change" || event.type === "resync") {
    document.querySelectorAll("[data-live]").forEach((el) => {
      const tables = el.dataset.live.split(",");
      if (event.type === "resync" || tables.includes(event.table)) refresh(el);
    });
  } else if (event.type === "permission_request") {
    showPermission(event);
  } else if (event.type === "permission_answered") {
    document.getElementById(`permission-${event.id}`)?.remove();
  }
  document.dispatchEvent(new CustomEvent("pando:event", { detail: event }));
}

function connectLive() {
  const state = document.getElementById("live-state");
  const source = new EventSource("/api/events");
  source.onopen = () => { if (state) { state.textContent = "● live"; state.className = "on"; } };
  source.onerror = () => { if (state) { state.textContent = "○ reconnecting"; state.className = "off"; } };
  source.onmessage = (message) => onLiveEvent(JSON.parse(message.data));
}

// -- permissions ------------------------------------------------------------------------------------
function currentSession() {
  const match = location.pathname.match(/^\/sessions\/([^/]+)$/);
  return match ? decodeURIComponent(match[1]) : null;
}

function showPermission(request) {
  const box = document.getElementById("permissions");
  const session = currentSession();
  if (!box || seenPermissions.has(request.id)) return;
  if (session && request.session_id !== session) return;
  seenPermissions.add(request.id);
  const div = document.createElement("div");
  div.className = "permission";
  div.id = `permission-${request.id}`;
  const text = document.createElement("p");
  text.textContent = `${request.tool} wants to ${request.action}: ${request.description}`;
  div.append(text);
  for (const [answer, label] of [["once", "Allow once"], ["session", "Allow for this session"], ["always", "Always allow"], ["deny", "Deny"]]) {
    const button = document.createElement("button");
    button.textContent = label;
    button.dataset.answer = answer;
    if (answer === "deny") button.className = "danger";
    button.onclick = async () => {
      const response = await post(`/api/permissions/${encodeURIComponent(request.id)}`, { answer });
      if (response.ok || response.status === 404) div.remove();
    };
    div.append(button);
  }
  box.append(div);
}

// -- a prompt, its answer streamed ------------------------------------------------------------------
async function* sseEvents(response) {
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
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data) yield JSON.parse(data);
    }
  }
}

async function sendPrompt(form) {
  const output = document.getElementById("stream");
  const field = form.querySelector("textarea");
  const button = form.querySelector("button");
  const prompt = field.value;
  if (!prompt.trim()) return;
  button.disabled = true;
  output.innerHTML = "";
  const asked = document.createElement("div");
  asked.className = "asked";
  asked.textContent = prompt;
  const answer = document.createElement("div");
  answer.className = "answer";
  const status = document.createElement("div");
  status.className = "status";
  status.textContent = "thinking…";
  output.append(asked, answer, status);
  try {
    const response = await post(form.dataset.stream, { prompt });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({ error: response.statusText }));
      status.textContent = `error: ${problem.error}`;
      status.classList.add("error");
      return;
    }
    field.value = "";
    const session = response.headers.get("x-pando-session");
    for await (const event of sseEvents(response)) {
      if (event.type === "text_delta") answer.textContent += event.text;
      else if (event.type === "tool_call") status.textContent = `running ${event.name}…`;
      else if (event.type === "tool_result") status.textContent = `${event.name} ${event.is_error ? "failed" : "done"}`;
      else if (event.type === "permission_request") showPermission(event);
      else if (event.type === "error") status.textContent = `error: ${event.error}`;
      else if (event.type === "continuation") {  // a Stop hook made the agent go on: a new answer follows
        if (!event.refused) answer.textContent += "\n\n";
        status.textContent = event.refused ? "a Stop hook asked to go on again: refused (limit)" : `a Stop hook asked to go on: ${event.reason}`;
      } else if (event.type === "result") {
        status.textContent = event.status === "success" ? "done" : `${event.status}${event.error ? ": " + event.error : ""}`;
        status.dataset.status = event.status;
        if (session && !currentSession()) {
          const link = document.createElement("a");
          link.href = `/sessions/${encodeURIComponent(session)}`;
          link.textContent = " open the session";
          status.append(link);
        }
      }
    }
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.stream) { event.preventDefault(); sendPrompt(form); return; }
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) event.preventDefault();
});

// -- followed logs: <pre data-sse-append="URL"> gets each event's text appended (from the start) ----
function followLog(el) {
  const source = new EventSource(el.dataset.sseAppend);
  let fresh = true;
  source.onmessage = (message) => {
    if (fresh) { el.textContent = ""; fresh = false; }
    el.textContent += JSON.parse(message.data).text;
    el.scrollTop = el.scrollHeight;
  };
  source.addEventListener("end", () => { source.close(); el.dataset.ended = "true"; });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-sse-append]").forEach(followLog);
  const pending = document.getElementById("pending-permissions");
  if (pending) JSON.parse(pending.textContent || "[]").forEach(showPermission);
  if (document.querySelector("[data-live], #permissions")) connectLive();
});

window.pando = { post, refresh, showPermission, sseEvents };
