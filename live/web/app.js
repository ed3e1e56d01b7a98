// hark page: microphone -> AudioWorklet -> WebSocket (f32le at the AudioContext's rate, which the
// hello declares; the server resamples) and the server's messages -> a canvas event roll (one row
// per class, the last ROLL_S seconds, shaded by score, events outlined) and the latest events.
"use strict";

const ROLL_S = 10;
const MAX_LIST = 40;
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

const state = {
  ws: null, ctx: null, media: null, node: null,
  rate: 0, sent: 0,           // samples sent: the stream clock
  rows: [],                   // [{model, label}]
  scores: [],                 // [{t, model, scores}] (recent)
  events: [],                 // finished [{model, label, onset, offset, confidence}]
  open: new Map(),            // "model/label" -> onset
};

function status(text) { $("status").textContent = text; }

function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/`;
}

async function start() {
  $("start").disabled = true;
  try {
    state.media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
               autoGainControl: false },
    });
    state.ctx = new AudioContext();
    await state.ctx.audioWorklet.addModule("worklet.js");
    await state.ctx.resume();
  } catch (e) {
    status(`microphone: ${e.name || e}: ${e.message || ""}`);
    $("start").disabled = false;
    return;
  }
  state.rate = state.ctx.sampleRate;
  state.sent = 0;
  const ws = new WebSocket(wsUrl());
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => {
    const hello = { type: "hello", sample_rate: state.rate, format: "f32le", channels: 1,
                    scores: true };
    const models = params.getAll("model");
    if (models.length) hello.models = models;
    if (params.get("token")) hello.token = params.get("token");
    ws.send(JSON.stringify(hello));
    status(`connecting (${state.rate} Hz)`);
  };
  ws.onmessage = (m) => onMessage(JSON.parse(m.data));
  ws.onclose = (e) => { status(`closed (${e.code}${e.reason ? ": " + e.reason : ""})`); stop(); };
  ws.onerror = () => status("connection failed");
}

function startCapture() {
  const source = state.ctx.createMediaStreamSource(state.media);
  const node = new AudioWorkletNode(state.ctx, "hark-capture",
                                    { processorOptions: { blockMs: 20 } });
  node.port.onmessage = (m) => {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(m.data.buffer);  // little-endian float32 on every platform browsers run on
      state.sent += m.data.length;
    }
  };
  source.connect(node);
  node.connect(state.ctx.destination);  // pulled by the graph; it outputs silence
  state.node = node;
  $("stop").disabled = false;
}

function onMessage(msg) {
  switch (msg.type) {
    case "ready":
      state.rows = msg.models.flatMap((m) => m.labels.map((label) => ({ model: m.name, label })));
      status(`listening · stream ${msg.stream} · ${state.rate} Hz · ` +
             msg.models.map((m) => m.name).join(", "));
      startCapture();
      break;
    case "scores":
      state.scores.push(msg);
      break;
    case "open":
      state.open.set(`${msg.model}/${msg.label}`, msg.onset);
      $("active").textContent = msg.label;
      break;
    case "cancel":  // it opened, then ended too short to be an event
      state.open.delete(`${msg.model}/${msg.label}`);
      if (!state.open.size) $("active").textContent = "";
      break;
    case "event":
      state.open.delete(`${msg.model}/${msg.label}`);
      state.events.push(msg);
      addToList(msg);
      if (!state.open.size) $("active").textContent = "";
      break;
    case "dropped":
      status(`server dropped ${msg.total_seconds} s of audio`);
      break;
    case "error":
      status(`error: ${msg.message}`);
      break;
    case "summary":
      status(`ended: ${msg.seconds} s, ${msg.events} events`);
      break;
    default:
      break;
  }
}

function addToList(ev) {
  const li = document.createElement("li");
  li.dataset.label = ev.label;
  li.dataset.model = ev.model;
  li.innerHTML = `<span class="label"></span> ${ev.onset.toFixed(2)}–${ev.offset.toFixed(2)} s ` +
                 `<small>${ev.model} ${ev.confidence.toFixed(2)}</small>`;
  li.querySelector(".label").textContent = ev.label;
  const list = $("events");
  list.insertBefore(li, list.firstChild);
  while (list.children.length > MAX_LIST) list.removeChild(list.lastChild);
}

function stop() {
  if (state.node) { state.node.port.onmessage = null; state.node.disconnect(); state.node = null; }
  if (state.media) { state.media.getTracks().forEach((t) => t.stop()); state.media = null; }
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send('{"type":"end"}');
  if (state.ctx) { state.ctx.close(); state.ctx = null; }
  $("start").disabled = false;
  $("stop").disabled = true;
}

function draw() {
  const cv = $("roll");
  const g = cv.getContext("2d");
  g.fillStyle = "#000";
  g.fillRect(0, 0, cv.width, cv.height);
  const rows = state.rows;
  if (rows.length) {
    const labelW = 110;
    const h = Math.max(8, Math.floor((cv.height - 16) / rows.length));
    const now = state.rate ? state.sent / state.rate : 0;
    const t0 = now - ROLL_S;
    const x = (t) => labelW + ((t - t0) / ROLL_S) * (cv.width - labelW);
    const index = new Map(rows.map((r, i) => [`${r.model}/${r.label}`, i]));
    state.scores = state.scores.filter((s) => s.t >= t0 - 1);
    state.events = state.events.filter((e) => e.offset >= t0);
    // scores: one column per message, shaded by the class's score
    for (let k = 0; k < state.scores.length; k++) {
      const s = state.scores[k];
      const prev = k > 0 ? state.scores[k - 1].t : s.t - 0.02;
      for (const [label, p] of Object.entries(s.scores)) {
        const i = index.get(`${s.model}/${label}`);
        if (i === undefined) continue;
        const v = Math.round(255 * Math.max(0, Math.min(1, p)));
        g.fillStyle = `rgb(${v >> 2}, ${v >> 1}, ${v})`;
        g.fillRect(x(Math.min(prev, s.t)), i * h, Math.max(1, x(s.t) - x(prev)), h - 1);
      }
    }
    // events: finished outlined in green, open ones in yellow up to now
    g.lineWidth = 2;
    const box = (i, a, b, color) => {
      g.strokeStyle = color;
      g.strokeRect(x(a), i * h + 1, Math.max(2, x(b) - x(a)), h - 3);
    };
    for (const e of state.events) {
      const i = index.get(`${e.model}/${e.label}`);
      if (i !== undefined) box(i, e.onset, e.offset, "#3f8");
    }
    for (const [key, onset] of state.open) {
      const i = index.get(key);
      if (i !== undefined) box(i, onset, now, "#fd3");
    }
    g.fillStyle = "#ccc";
    g.font = `${Math.min(14, h - 2)}px monospace`;
    rows.forEach((r, i) => g.fillText(r.label, 4, i * h + h - 4));
    g.fillStyle = "#666";
    g.fillText(`last ${ROLL_S} s · ${now.toFixed(1)} s`, labelW, cv.height - 3);
  }
  requestAnimationFrame(draw);
}

$("start").onclick = start;
$("stop").onclick = stop;
requestAnimationFrame(draw);
