// The relay's monitor page: polls /monitor.json every second and draws what it says. No
// dependencies; the charts are SVG. Every name a peer chose (rooms, errors) is set as text,
// never as markup.
"use strict";

const POLL_MS = 1000;
const WINDOW_MS = 10 * 60 * 1000;
const KEEP = 600;
const COLORS = {
  "tcp": "#4fb3ff", "quic": "#a78bfa", "webrtc-direct": "#3ecf8e", "ws": "#f0b429",
  "wss": "#ff9f43", "circuit": "#ff6b6b", "other": "#8a99ad",
};
const SVG = "http://www.w3.org/2000/svg";

let samples = [];
let transports = [];
let lastOk = 0;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
}

function formatUptime(secs) {
  const d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600);
  const m = Math.floor(secs % 3600 / 60), s = secs % 60;
  if (d > 0) return d + "d " + h + "h";
  if (h > 0) return h + "h " + m + "m";
  if (m > 0) return m + "m " + s + "s";
  return s + "s";
}

function shortPeer(id) {
  return id.length > 16 ? id.slice(0, 8) + "…" + id.slice(-6) : id;
}

function clockTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

// A round step for about `ticks` grid lines up to `max`.
function niceStep(max, ticks) {
  const raw = Math.max(max / ticks, 1e-9);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

// Messages per second between successive samples.
function rates() {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].at_ms - samples[i - 1].at_ms) / 1000;
    const dn = samples[i].forwarded - samples[i - 1].forwarded;
    out.push({ at_ms: samples[i].at_ms, value: dt > 0 && dn >= 0 ? dn / dt : 0 });
  }
  return out;
}

// Sizes the SVG's coordinates to its box, so that text keeps its shape; returns [w, h].
function frame(svg) {
  const w = Math.max(svg.clientWidth, 200), h = Math.max(svg.clientHeight, 80);
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.replaceChildren();
  return [w, h];
}

function axes(svg, w, h, max, pad, end, unit) {
  const step = niceStep(max, 4);
  for (let v = 0; v <= max + 1e-9; v += step) {
    const y = h - pad.bottom - (v / max) * (h - pad.top - pad.bottom);
    svg.append(el("svg:line", { class: "grid", x1: pad.left, x2: w - pad.right, y1: y, y2: y }));
    const label = Number.isInteger(step) ? String(v) : v.toFixed(1);
    svg.append(el("svg:text", { class: "axis", x: pad.left - 6, y: y + 4, "text-anchor": "end" }, label + unit));
  }
  for (const minutes of [10, 5, 0]) {
    const x = pad.left + (1 - minutes * 60000 / WINDOW_MS) * (w - pad.left - pad.right);
    const text = minutes === 0 ? clockTime(end) : "−" + minutes + " min";
    const anchor = minutes === 10 ? "start" : minutes === 0 ? "end" : "middle";
    svg.append(el("svg:text", { class: "axis", x: x, y: h - 4, "text-anchor": anchor }, text));
  }
}

function drawConnections() {
  const svg = $("connections-chart");
  const [w, h] = frame(svg);
  const pad = { left: 40, right: 8, top: 8, bottom: 20 };
  const end = samples.length ? samples[samples.length - 1].at_ms : Date.now();
  const x = (t) => pad.left + (1 - (end - t) / WINDOW_MS) * (w - pad.left - pad.right);
  const shown = transports.map((t, i) => ({ t, i })).filter(({ i }) => samples.some((s) => s.connections[i] > 0));
  let max = 1;
  for (const s of samples) max = Math.max(max, s.connections.reduce((a, b) => a + b, 0));
  max = Math.ceil(max * 1.15);
  const y = (v) => h - pad.bottom - (v / max) * (h - pad.top - pad.bottom);
  axes(svg, w, h, max, pad, end, "");
  // Stacked areas: each transport on top of those before it.
  const base = samples.map(() => 0);
  for (const { t, i } of shown) {
    const top = samples.map((s, k) => base[k] + s.connections[i]);
    const points = samples.map((s, k) => x(s.at_ms) + "," + y(top[k]));
    const under = samples.map((s, k) => x(s.at_ms) + "," + y(base[k])).reverse();
    svg.append(el("svg:polygon", { points: points.concat(under).join(" "), fill: COLORS[t] || COLORS.other, "fill-opacity": "0.75" }));
    top.forEach((v, k) => { base[k] = v; });
  }
  const legend = $("legend");
  legend.replaceChildren();
  const last = samples[samples.length - 1];
  for (const [i, t] of transports.entries()) {
    const now = last ? last.connections[i] : 0;
    if (now === 0 && !shown.some((s) => s.t === t)) continue;
    const item = el("li", { "data-transport": t });
    const swatch = el("i");
    swatch.style.background = COLORS[t] || COLORS.other;
    item.append(swatch, document.createTextNode(t), el("b", {}, String(now)));
    legend.append(item);
  }
  if (!legend.children.length) legend.append(el("li", {}, "no connections"));
}

function drawRate(series) {
  const svg = $("rate-chart");
  const [w, h] = frame(svg);
  const pad = { left: 40, right: 8, top: 8, bottom: 20 };
  const end = samples.length ? samples[samples.length - 1].at_ms : Date.now();
  const x = (t) => pad.left + (1 - (end - t) / WINDOW_MS) * (w - pad.left - pad.right);
  let max = 1;
  for (const r of series) max = Math.max(max, r.value);
  max = max * 1.15;
  const y = (v) => h - pad.bottom - (v / max) * (h - pad.top - pad.bottom);
  axes(svg, w, h, max, pad, end, "");
  if (series.length < 2) return;
  const line = series.map((r) => x(r.at_ms) + "," + y(r.value));
  const fill = line.concat([x(series[series.length - 1].at_ms) + "," + y(0), x(series[0].at_ms) + "," + y(0)]);
  svg.append(el("svg:polygon", { class: "rate-fill", points: fill.join(" ") }));
  svg.append(el("svg:polyline", { class: "rate", points: line.join(" ") }));
}

function drawRooms(rooms, total) {
  const body = $("rooms").querySelector("tbody");
  body.replaceChildren();
  const most = rooms.reduce((m, r) => Math.max(m, r.members), 1);
  for (const r of rooms) {
    const row = el("tr", { "data-room": r.room });
    const bar = el("div", { class: "bar" });
    const fill = el("span");
    fill.style.width = Math.max(2, 100 * r.members / most) * 0.7 + "%";
    bar.append(fill, el("b", {}, String(r.members)));
    const cell = el("td", { class: "members" });
    cell.append(bar);
    row.append(el("td", { class: "room" }, r.room), cell);
    body.append(row);
  }
  $("rooms-empty").hidden = rooms.length > 0;
  $("rooms").hidden = rooms.length === 0;
  $("rooms-note").textContent = total > rooms.length ? "the " + rooms.length + " busiest of " + total : "";
}

function drawStore(store) {
  const box = $("store");
  if (!store) return;
  box.replaceChildren();
  const share = store.max_bytes > 0 ? store.content_bytes / store.max_bytes : 0;
  const meter = el("div", { class: share > 0.8 ? "meter high" : "meter", role: "meter",
    "aria-valuemin": "0", "aria-valuemax": String(store.max_bytes), "aria-valuenow": String(store.content_bytes) });
  const fill = el("span");
  fill.style.width = Math.min(100, share * 100) + "%";
  meter.append(fill);
  const figures = el("dl", { class: "store-figures" });
  const add = (name, value, id) => figures.append(el("dt", {}, name), el("dd", { id: id }, value));
  add("held", formatBytes(store.content_bytes) + " of " + formatBytes(store.max_bytes) + " (" + (share * 100).toFixed(1) + " %)", "store-bytes");
  add("room messages", String(store.room_messages), "store-messages");
  add("DMs waiting", String(store.dms_waiting), "store-dms");
  box.append(meter, figures);
}

function drawEvents(events) {
  const list = $("events");
  list.replaceChildren();
  for (const e of events.slice().reverse()) {
    const item = el("li", { "data-kind": e.kind });
    const what = el("span", { class: "what" });
    if (e.peer) {
      what.append(el("code", { title: e.peer }, shortPeer(e.peer)));
      if (e.detail) what.append(document.createTextNode(" "));
    }
    if (e.detail) what.append(document.createTextNode(e.detail.replace(/12D3Koo\w{40,}/g, (id) => shortPeer(id))));
    item.append(el("time", {}, clockTime(e.at_ms)), el("span", { class: "kind " + e.kind }, e.kind), what);
    list.append(item);
  }
  $("events-empty").hidden = events.length > 0;
}

function drawAddrs(addrs) {
  const list = $("addrs");
  list.replaceChildren();
  for (const a of addrs) {
    const item = el("li");
    item.append(el("code", {}, a));
    list.append(item);
  }
  if (!addrs.length) list.append(el("li", {}, "none yet"));
}

function render(snapshot) {
  $("peer-id").textContent = snapshot.peer_id;
  $("peer-id").title = "peer id: " + snapshot.peer_id;
  $("version").textContent = "v" + snapshot.version;
  transports = snapshot.transports;
  const last = samples[samples.length - 1];
  $("peers").textContent = last ? String(last.peers) : "–";
  $("reservations").textContent = last ? String(last.reservations) : "–";
  $("circuits").textContent = last ? String(last.circuits) : "–";
  $("rooms-count").textContent = String(snapshot.rooms_total);
  $("uptime").textContent = formatUptime(snapshot.uptime_secs);
  const series = rates();
  const recent = series.slice(-5);
  const rate = recent.length ? recent.reduce((a, r) => a + r.value, 0) / recent.length : 0;
  $("rate").textContent = rate < 10 ? rate.toFixed(1) : String(Math.round(rate));
  drawConnections();
  drawRate(series);
  drawRooms(snapshot.rooms, snapshot.rooms_total);
  drawStore(snapshot.store);
  drawEvents(snapshot.events);
  drawAddrs(snapshot.addrs);
}

function showLive() {
  const age = (Date.now() - lastOk) / 1000;
  const dot = $("live-dot");
  if (lastOk === 0) return;
  if (age < 5) {
    dot.className = "dot on";
    $("live").textContent = "live";
  } else {
    dot.className = "dot off";
    $("live").textContent = "the relay has not answered for " + Math.round(age) + " s";
  }
}

async function poll() {
  const since = samples.length ? samples[samples.length - 1].at_ms : null;
  try {
    const response = await fetch("/monitor.json" + (since === null ? "" : "?since=" + since), { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const snapshot = await response.json();
    samples = samples.concat(snapshot.samples).slice(-KEEP);
    lastOk = Date.now();
    render(snapshot);
  } catch (e) {
    console.warn("monitor: " + e);
  }
  showLive();
  setTimeout(poll, POLL_MS);
}

window.addEventListener("resize", () => { if (samples.length) { drawConnections(); drawRate(rates()); } });
poll();
