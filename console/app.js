// The Colloquy console: the operator API in a page. No framework and no third-party code; every
// text from the API is set as text (never parsed as HTML). The operator key lives in this tab's
// sessionStorage and travels only in the Authorization header.
"use strict";

const KEY = "colloquy.operatorKey";
const $ = (selector) => document.querySelector(selector);

/** An element with attributes (on* names become listeners) and children (strings are text). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

/** Replaces an element's children, leaving out absent ones (null, false). */
function put(el, ...children) {
  el.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

function say(message, isError = false) {
  const status = $("#status");
  status.textContent = message;
  status.className = isError ? "error" : "";
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

/** Calls the API with the signed-in key; JSON in and out. */
async function api(path, { method = "GET", body, key = sessionStorage.getItem(KEY), raw = false } = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (raw && response.ok) return response;
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && key === sessionStorage.getItem(KEY)) signOut("The key was refused (wrong or revoked). Sign in again.");
    throw new ApiError(response.status, parsed);
  }
  return parsed;
}

const day = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 10);
const when = (seconds) => new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
const toSeconds = (date, endOfDay = false) => (date ? Math.floor(Date.parse(`${date}T00:00:00Z`) / 1000) + (endOfDay ? 86400 : 0) : "");
const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined && v !== null) q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
};

// ---- sign in and out ----

function signOut(message) {
  sessionStorage.removeItem(KEY);
  speakingApp = null;
  show();
  if (message) say(message, true);
}

async function signIn(event) {
  event.preventDefault();
  const key = $("#key").value.trim();
  try {
    await api("/app/stats?granularity=day", { key });
    sessionStorage.setItem(KEY, key);
    $("#key").value = "";
    say("");
    if (!location.hash || location.hash === "#/") location.hash = "#/overview";
    show();
  } catch (error) {
    const message = error.status === 401 ? "This key is wrong or revoked."
      : error.status === 403 ? "This is an app key: the console needs an operator key." : `Could not sign in: ${error.message}`;
    say(message, true);
    $("#key").focus();
  }
}

// ---- routing ----

const VIEWS = { overview, conversations, conversation, feedback, annotations, exports, audit };

function route() {
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, id] = path.split("/");
  return { name: VIEWS[name] ? name : "overview", id, params: new URLSearchParams(search || "") };
}

async function show() {
  const signedIn = Boolean(sessionStorage.getItem(KEY));
  $("#sign-in").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  $("#view").hidden = !signedIn;
  if (!signedIn) {
    $("#key").focus();
    return;
  }
  const { name, id, params } = route();
  for (const link of document.querySelectorAll("#nav a")) {
    const current = link.getAttribute("href") === `#/${name === "conversation" ? "conversations" : name}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // Each view renders apart and is shown only if no later navigation started meanwhile.
  const mine = ++rendering;
  for (const url of objectUrls.splice(0)) URL.revokeObjectURL(url);
  const view = $("#view");
  put(view, h("p", { text: "Loading…" }));
  const part = h("div");
  try {
    await VIEWS[name](part, id, params);
  } catch (error) {
    part.replaceChildren(h("p", { class: "error", role: "alert", text: `Could not load this page: ${error.message}` }));
  }
  if (mine === rendering) put(view, ...part.childNodes);
}

let rendering = 0;

// ---- overview ----

function barChart(title, rows, series, format = (v) => v) {
  const width = Math.max(rows.length * 24, 240);
  const max = Math.max(1, ...rows.flatMap((row) => series.map((one) => row[one.key] || 0)));
  const band = width / Math.max(rows.length, 1);
  const bar = band / (series.length + 1);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} 140`, preserveAspectRatio: "none", role: "img", "aria-label": title });
  rows.forEach((row, i) => {
    series.forEach((one, j) => {
      const value = row[one.key] || 0;
      const height = (value / max) * 130;
      const rect = s("rect", { class: one.class, x: i * band + j * bar + bar / 2, y: 135 - height, width: bar, height: Math.max(height, value ? 1 : 0) });
      rect.append(s("title", {}, `${day(row.start)} · ${one.label}: ${format(row[one.key])}`));
      svg.append(rect);
    });
  });
  const table = h("table", { class: "visually-hidden" },
    h("caption", { text: title }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Day" }), series.map((one) => h("th", { scope: "col", class: "num", text: one.label })))),
    h("tbody", {}, rows.map((row) => h("tr", {}, h("th", { scope: "row", text: day(row.start) }), series.map((one) => h("td", { class: "num", text: format(row[one.key]) }))))));
  const legend = series.length > 1
    ? h("p", { class: "legend" }, series.map((one) => h("span", {}, h("span", { class: `swatch ${one.class}`, "aria-hidden": "true" }), one.label)))
    : null;
  const axis = rows.length
    ? h("p", { class: "axis", "aria-hidden": "true" },
      h("span", { text: day(rows[0].start) }), h("span", { text: `highest: ${format(max)}` }), h("span", { text: day(rows[rows.length - 1].start) }))
    : null;
  return h("figure", { "data-chart": title }, h("figcaption", { text: title }), svg, axis, legend, table);
}

async function overview(view, _id, params) {
  const today = new Date().toISOString().slice(0, 10);
  const start = params.get("start") || day(Date.now() / 1000 - 13 * 86400);
  const end = params.get("end") || today;
  const stats = await api(`/app/stats${query({ granularity: "day", start: toSeconds(start), end: toSeconds(end, true) })}`);
  const rows = stats.data;
  const latency = (v) => (v === null || v === undefined ? "—" : `${Number(v).toFixed(2)} s`);
  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/overview${query({ start: form.start.value, end: form.end.value })}`;
  } },
  h("div", {}, h("label", { for: "start", text: "From" }), h("input", { id: "start", name: "start", type: "date", value: start })),
  h("div", {}, h("label", { for: "end", text: "To" }), h("input", { id: "end", name: "end", type: "date", value: end })),
  h("button", { type: "submit", text: "Show" }));
  const total = (key) => rows.reduce((sum, row) => sum + (row[key] || 0), 0);
  put(view, 
    h("h1", { text: "Overview" }), form,
    h("p", { text: `${total("messages")} messages, ${total("conversations")} new conversations, ${total("likes")} likes and ${total("dislikes")} dislikes from ${day(stats.start)} to ${day(stats.end - 1)} (UTC).` }),
    h("div", { class: "charts" },
      barChart("Messages per day", rows, [{ key: "messages", label: "Messages", class: "a" }]),
      barChart("Active end users per day", rows, [{ key: "end_users", label: "End users", class: "a" }]),
      barChart("Likes and dislikes", rows, [{ key: "likes", label: "Likes", class: "good" }, { key: "dislikes", label: "Dislikes", class: "bad" }]),
      barChart("Average answer latency", rows, [{ key: "average_latency", label: "Latency", class: "b" }], latency)));
}

// ---- conversations ----

const known = new Map();

async function conversations(view, _id, params) {
  const filters = ["user", "name", "rating", "created_after", "created_before"];
  const asked = Object.fromEntries(filters.map((f) => [f, params.get(f) || ""]));
  const last = params.get("last_id") || "";
  const trail = (params.get("trail") || "").split(",").filter(Boolean);
  const page = await api(`/app/conversations${query({
    ...asked, limit: 20, last_id: last,
    created_after: toSeconds(asked.created_after), created_before: toSeconds(asked.created_before, true),
  })}`);
  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const chosen = Object.fromEntries(filters.map((f) => [f, form[f].value.trim()]));
    location.hash = `#/conversations${query(chosen)}`;
  } },
  h("div", {}, h("label", { for: "user", text: "User" }), h("input", { id: "user", name: "user", value: asked.user })),
  h("div", {}, h("label", { for: "name", text: "Name contains" }), h("input", { id: "name", name: "name", value: asked.name })),
  h("div", {}, h("label", { for: "rating", text: "Rated" }), h("select", { id: "rating", name: "rating" },
    h("option", { value: "", text: "any" }), h("option", { value: "like", text: "liked", selected: asked.rating === "like" }),
    h("option", { value: "dislike", text: "disliked", selected: asked.rating === "dislike" }))),
  h("div", {}, h("label", { for: "created_after", text: "Created from" }), h("input", { id: "created_after", name: "created_after", type: "date", value: asked.created_after })),
  h("div", {}, h("label", { for: "created_before", text: "Created to" }), h("input", { id: "created_before", name: "created_before", type: "date", value: asked.created_before })),
  h("button", { type: "submit", text: "Filter" }));
  for (const row of page.data) known.set(row.id, row);
  const here = (extra) => `#/conversations${query({ ...asked, ...extra })}`;
  const previous = trail.length ? here({ last_id: trail[trail.length - 2] || "", trail: trail.slice(0, -1).join(",") }) : null;
  const next = page.has_more ? here({ last_id: page.data[page.data.length - 1].id, trail: [...trail, page.data[page.data.length - 1].id].join(",") }) : null;
  put(view, h("h1", { text: "Conversations" }), form,
    h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Conversations table" }, h("table", {},
      h("caption", { class: "visually-hidden", text: "Conversations, newest activity first" }),
      h("thead", {}, h("tr", {}, ["Name", "User", "Messages", "Likes", "Dislikes", "Last activity"].map((title, i) => h("th", { scope: "col", class: i > 1 && i < 5 ? "num" : null, text: title })))),
      h("tbody", {}, page.data.map((row) => h("tr", { "data-id": row.id },
        h("td", {}, h("a", { href: `#/conversation/${row.id}`, text: row.name || "(unnamed)" })),
        h("td", { text: row.user ?? "—" }),
        h("td", { class: "num", text: row.message_count }),
        h("td", { class: "num", text: row.like_count }),
        h("td", { class: "num", text: row.dislike_count }),
        h("td", { text: when(row.updated_at) })))))),
    page.data.length ? null : h("p", { text: "No conversation matches." }),
    h("div", { class: "pager" },
      previous ? h("a", { href: previous, text: "Previous page" }) : null,
      next ? h("a", { href: next, text: "Next page" }) : null));
}

function dialog(title, fields, submitLabel) {
  return new Promise((resolve) => {
    const form = h("form", { method: "dialog" }, h("h2", { text: title }),
      fields.map((field) => h("p", {}, h("label", { for: `d-${field.name}`, text: field.label }),
        h(field.multiline ? "textarea" : "input", { id: `d-${field.name}`, name: field.name, required: true }))),
      h("div", { class: "actions" }, h("button", { type: "submit", value: "ok", text: submitLabel }), h("button", { type: "submit", value: "cancel", class: "plain", formnovalidate: true, text: "Cancel" })));
    const box = h("dialog", {}, form);
    fields.forEach((field) => { form[field.name].value = field.value || ""; });
    box.addEventListener("close", () => {
      const values = Object.fromEntries(fields.map((field) => [field.name, form[field.name].value]));
      box.remove();
      resolve(box.returnValue === "ok" ? values : null);
    });
    document.body.append(box);
    box.showModal();
  });
}

async function conversation(view, id) {
  const page = await api(`/app/conversations/${id}/messages?limit=100`);
  const row = known.get(id);
  const rate = async (message, rating) => {
    await api(`/app/messages/${message.id}/feedbacks`, { method: "POST", body: { rating } });
    say(`Rated ${rating}.`);
    await show();
  };
  const annotate = async (message) => {
    const values = await dialog("Annotate this answer", [
      { name: "question", label: "Question", value: message.query },
      { name: "answer", label: "Answer", value: message.answer, multiline: true }], "Save annotation");
    if (!values) return;
    await api("/apps/annotations", { method: "POST", body: values });
    say("Annotation saved.");
  };
  const erase = async () => {
    if (!row || !row.user) return;
    if (!confirm(`Erase everything of the end user “${row.user}”? Their conversations, messages, feedback and files are removed for good.`)) return;
    const job = await api(`/end-users/${encodeURIComponent(row.user)}`, { method: "DELETE" });
    say(`Erasure ${job.job_id} started: ${job.conversations} conversations removed so far.`);
    location.hash = "#/conversations";
  };
  const remove = async () => {
    if (!confirm(`Delete the conversation “${row ? row.name : id}” with all its messages and feedback?`)) return;
    await api(`/app/conversations/${id}`, { method: "DELETE" });
    say("Conversation deleted.");
    location.hash = "#/conversations";
  };
  const listen = async (message, button) => {
    button.disabled = true;
    try {
      const audio = h("audio", { controls: true, src: await blobUrl(`/app/conversations/${id}/messages/${message.id}/audio`), "aria-label": "The answer, spoken" });
      button.replaceWith(audio);
      audio.play().catch(() => {});
    } catch (error) {
      button.disabled = false;
      say(`Could not speak the answer: ${error.message}`, true);
    }
  };
  const speaks = await speaking();
  const item = (message) => h("li", { "data-id": message.id },
    h("p", { class: "who", text: `${when(message.created_at)} · ${message.status}` }),
    h("p", { class: "q", text: message.query }),
    files(id, message.message_files || []),
    h("p", { class: "a", text: message.answer || message.error || "" }),
    h("p", { class: "who", text: message.feedbacks.length
      ? message.feedbacks.map((f) => `${f.from_source === "admin" ? "Operators" : "End user"}: ${f.rating}${f.content ? ` (“${f.content}”)` : ""}`).join(" · ")
      : "No feedback." }),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "plain", onclick: () => rate(message, "like"), text: "Like" }),
      h("button", { type: "button", class: "plain", onclick: () => rate(message, "dislike"), text: "Dislike" }),
      h("button", { type: "button", class: "plain", onclick: () => annotate(message), text: "Annotate" }),
      speaks && message.answer ? h("button", { type: "button", class: "plain", onclick: (event) => listen(message, event.currentTarget), text: "Listen" }) : null));
  const thread = h("ol", { class: "thread" }, page.data.map(item));
  const older = async (button, first) => {
    const more = await api(`/app/conversations/${id}/messages?limit=100&first_id=${first}`);
    thread.prepend(...more.data.map(item));
    if (more.has_more) button.onclick = () => older(button, more.data[0].id);
    else button.remove();
    say(`${more.data.length} older messages shown.`);
  };
  const olderButton = page.has_more ? h("button", { type: "button", class: "plain", text: "Show older messages" }) : null;
  if (olderButton) olderButton.onclick = () => older(olderButton, page.data[0].id);
  put(view,
    h("p", {}, h("a", { href: "#/conversations", text: "← All conversations" })),
    h("h1", { text: row ? row.name : "Conversation" }),
    h("p", {}, h("button", { type: "button", class: "danger", onclick: remove, text: "Delete this conversation…" })),
    row && row.user ? h("p", {}, `End user: ${row.user} `, h("button", { type: "button", class: "danger", onclick: erase, text: "Erase this end user…" })) : null,
    olderButton ? h("p", {}, olderButton) : null,
    thread);
}

/** A message's files: images as thumbnails (fetched with the key), other uploads as downloads. */
function files(conversationId, list) {
  if (!list.length) return null;
  return h("ul", { class: "files" }, list.map((file) => {
    if (!file.upload_file_id) {
      return h("li", {}, h("a", { href: file.url, rel: "noopener noreferrer", target: "_blank", text: `${file.filename || file.url} (link)` }));
    }
    const path = `/app/conversations/${conversationId}/files/${file.upload_file_id}/preview`;
    if (file.type === "image") {
      const img = h("img", { class: "thumb", alt: file.filename, width: 160, height: 120 });
      blobUrl(path).then((url) => { img.src = url; }, () => { img.replaceWith(h("span", { class: "who", text: `${file.filename} (not available)` })); });
      return h("li", {}, img);
    }
    const download = async () => save(await (await api(`${path}?as_attachment=true`, { raw: true })).blob(), file.filename);
    return h("li", {}, h("button", { type: "button", class: "plain", onclick: download, text: `Download ${file.filename}` }));
  }));
}

/** An object URL of what an API path answers (fetched with the key); revoked on the next page. */
const objectUrls = [];
async function blobUrl(path) {
  const response = await api(path, { raw: true });
  const url = URL.createObjectURL(await response.blob());
  objectUrls.push(url);
  return url;
}

/** Whether the app speaks answers (its parameters say so), asked once per sign-in. */
let speakingApp = null;
async function speaking() {
  if (speakingApp === null) {
    const parameters = await api("/parameters");
    speakingApp = Boolean(parameters.text_to_speech && parameters.text_to_speech.enabled);
  }
  return speakingApp;
}

// ---- feedback ----

async function feedback(view, _id, params) {
  const asked = { rating: params.get("rating") || "", from_source: params.get("from_source") || "" };
  const pageNumber = Number(params.get("page") || 1);
  const list = await api(`/app/feedbacks${query({ ...asked, page: pageNumber, limit: 20 })}`);
  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/feedback${query({ rating: form.rating.value, from_source: form.from_source.value })}`;
  } },
  h("div", {}, h("label", { for: "f-rating", text: "Rating" }), h("select", { id: "f-rating", name: "rating" },
    ["", "like", "dislike"].map((v) => h("option", { value: v, selected: asked.rating === v, text: v || "any" })))),
  h("div", {}, h("label", { for: "f-source", text: "From" }), h("select", { id: "f-source", name: "from_source" },
    ["", "user", "admin"].map((v) => h("option", { value: v, selected: asked.from_source === v, text: v || "anyone" })))),
  h("button", { type: "submit", text: "Filter" }),
  h("button", { type: "button", class: "plain", onclick: () => downloadFeedback(asked), text: "Download CSV" }));
  const here = (page) => `#/feedback${query({ ...asked, page })}`;
  put(view, h("h1", { text: "Feedback" }), form,
    h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Feedback table" }, h("table", {},
      h("thead", {}, h("tr", {}, ["When", "From", "Rating", "Comment", "Query", "Answer"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, list.data.map((f) => h("tr", {},
        h("td", { text: f.created_at }), h("td", { text: f.from_source }), h("td", { text: f.rating }),
        h("td", { text: f.content || "" }), h("td", { text: f.query || "" }), h("td", { text: f.answer || "" })))))),
    h("div", { class: "pager" },
      pageNumber > 1 ? h("a", { href: here(pageNumber - 1), text: "Previous page" }) : null,
      list.data.length === 20 ? h("a", { href: here(pageNumber + 1), text: "Next page" }) : null));
}

const csvCell = (value) => {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

async function downloadFeedback(asked) {
  const columns = ["created_at", "from_source", "rating", "content", "conversation_id", "message_id", "query", "answer"];
  const lines = [columns.join(",")];
  for (let page = 1; ; page += 1) {
    const list = await api(`/app/feedbacks${query({ ...asked, page, limit: 100 })}`);
    for (const f of list.data) lines.push(columns.map((c) => csvCell(f[c])).join(","));
    if (list.data.length < 100) break;
  }
  save(new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" }), "feedback.csv");
  say(`Downloaded ${lines.length - 1} feedback rows.`);
}

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- annotations ----

async function annotations(view, _id, params) {
  const keyword = params.get("keyword") || "";
  const pageNumber = Number(params.get("page") || 1);
  const list = await api(`/apps/annotations${query({ keyword, page: pageNumber, limit: 20 })}`);
  const edit = async (annotation) => {
    const values = await dialog(annotation ? "Edit annotation" : "New annotation", [
      { name: "question", label: "Question", value: annotation && annotation.question },
      { name: "answer", label: "Answer", value: annotation && annotation.answer, multiline: true }], "Save");
    if (!values) return;
    await api(annotation ? `/apps/annotations/${annotation.id}` : "/apps/annotations", { method: annotation ? "PUT" : "POST", body: values });
    say("Annotation saved.");
    await show();
  };
  const remove = async (annotation) => {
    if (!confirm(`Delete the annotation “${annotation.question}”?`)) return;
    await api(`/apps/annotations/${annotation.id}`, { method: "DELETE" });
    say("Annotation deleted.");
    await show();
  };
  const reply = async (action) => {
    const body = action === "enable" ? { score_threshold: 0.8, embedding_provider_name: "", embedding_model_name: "" } : {};
    const job = await api(`/apps/annotation-reply/${action}`, { method: "POST", body });
    for (let i = 0; i < 60; i += 1) {
      const status = await api(`/apps/annotation-reply/${action}/status/${job.job_id}`);
      say(`Annotation reply ${action}: ${status.job_status}${status.error_msg ? ` (${status.error_msg})` : ""}`, Boolean(status.error_msg));
      if (status.job_status !== "waiting" && status.job_status !== "processing") return;
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    location.hash = `#/annotations${query({ keyword: form.keyword.value.trim() })}`;
  } },
  h("div", {}, h("label", { for: "keyword", text: "Search" }), h("input", { id: "keyword", name: "keyword", value: keyword })),
  h("button", { type: "submit", text: "Search" }),
  h("button", { type: "button", class: "plain", onclick: () => edit(null), text: "New annotation" }),
  h("button", { type: "button", class: "plain", onclick: () => reply("enable"), text: "Turn reply on" }),
  h("button", { type: "button", class: "plain", onclick: () => reply("disable"), text: "Turn reply off" }));
  const here = (page) => `#/annotations${query({ keyword, page })}`;
  put(view, h("h1", { text: "Annotations" }), form, h("p", { text: `${list.total} annotations.` }),
    h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Annotations table" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Question", "Answer", "Hits", ""].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, list.data.map((a) => h("tr", {},
        h("td", { text: a.question }), h("td", { text: a.answer }), h("td", { class: "num", text: a.hit_count }),
        h("td", {}, h("div", { class: "actions" },
          h("button", { type: "button", class: "plain", onclick: () => edit(a), text: "Edit" }),
          h("button", { type: "button", class: "danger", onclick: () => remove(a), text: "Delete" })))))))),
    h("div", { class: "pager" },
      pageNumber > 1 ? h("a", { href: here(pageNumber - 1), text: "Previous page" }) : null,
      list.has_more ? h("a", { href: here(pageNumber + 1), text: "Next page" }) : null));
}

// ---- exports ----

async function exports(view) {
  const progress = h("progress", { max: 100, value: 0, "aria-label": "Export progress" });
  const state = h("p", { role: "status", text: "" });
  const link = h("p");
  const start = async (event) => {
    event.preventDefault();
    let job = await api("/app/exports", { method: "POST", body: { format: form.format.value } });
    while (job.status === "pending" || job.status === "running") {
      progress.value = job.progress;
      state.textContent = `${job.status}: ${job.progress}% (${job.messages} messages)`;
      await new Promise((r) => setTimeout(r, 500));
      job = await api(`/app/exports/${job.id}`);
    }
    progress.value = job.progress;
    state.textContent = job.status === "done" ? `Done: ${job.messages} messages, ${job.size} bytes.` : `Failed: ${job.error}`;
    if (job.status === "done") link.replaceChildren(downloadLink(job));
  };
  const form = h("form", { class: "filters", onsubmit: start },
    h("div", {}, h("label", { for: "format", text: "Format" }), h("select", { id: "format", name: "format" },
      h("option", { value: "jsonl", text: "JSON Lines" }), h("option", { value: "csv", text: "CSV" }))),
    h("button", { type: "submit", text: "Export all messages" }));
  put(view, h("h1", { text: "Exports" }), form, progress, state, link);
}

function downloadLink(job) {
  const url = job.download_url;
  const name = `colloquy-export-${job.id}.${job.format}`;
  // The server's own route takes the key in a header: fetched, then saved; S3's link is signed.
  if (url.startsWith(location.origin) || url.startsWith("/")) {
    return h("button", { type: "button", onclick: async () => {
      const response = await api(`/app/exports/${job.id}/download`, { raw: true });
      save(await response.blob(), name);
    }, text: "Download the file" });
  }
  return h("a", { href: url, rel: "noreferrer", text: "Download the file" });
}

// ---- audit log ----

async function audit(view, _id, params) {
  const last = params.get("last_id") || "";
  const trail = (params.get("trail") || "").split(",").filter(Boolean);
  const page = await api(`/app/audit-log${query({ limit: 50, last_id: last })}`);
  const lastId = page.data.length ? page.data[page.data.length - 1].id : "";
  put(view, h("h1", { text: "Audit log" }),
    h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": "Audit log table" }, h("table", {},
      h("thead", {}, h("tr", {}, ["When", "Who", "What", "On", "Detail"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, page.data.map((e) => h("tr", {},
        h("td", { text: when(e.created_at) }), h("td", { text: e.actor }), h("td", { text: e.action }),
        h("td", { text: e.target || "" }), h("td", { text: e.detail || "" })))))),
    h("div", { class: "pager" },
      trail.length ? h("a", { href: `#/audit${query({ last_id: trail[trail.length - 2] || "", trail: trail.slice(0, -1).join(",") })}`, text: "Newer" }) : null,
      page.has_more ? h("a", { href: `#/audit${query({ last_id: lastId, trail: [...trail, lastId].join(",") })}`, text: "Older" }) : null));
}

// ---- start ----

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", () => signOut("Signed out."));
  window.addEventListener("hashchange", show);
  show();
});
