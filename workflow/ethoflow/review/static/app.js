// ethoflow review: plain JS, no build step. Talks to the JSON API of ethoflow/review/app.py.
"use strict";

const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
  "#f032e6", "#9a6324", "#469990"];
const LEFT = 78; // canvas left margin for row names (CSS px)
const $ = (id) => document.getElementById(id);

const S = {
  order: "margin", queue: null, sessions: [], key: null, d: null, etag: null, bouts: [],
  cur: -1, cursor: 0, busy: Promise.resolve(), mark: null, pendingAdd: null, playUntil: null,
  windows: {},
};

// ------------------------------------------------------------------ helpers
async function api(path, opts = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  return { status: r.status, body };
}

function toast(msg, bad = false) {
  const t = $("toast");
  t.textContent = msg;
  t.className = "show" + (bad ? " bad" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, bad ? 5000 : 2500);
}

const color = (name) => {
  const i = S.d ? S.d.classes.indexOf(name) : -1;
  return i <= 0 ? "#bbb" : COLORS[(i - 1) % COLORS.length];
};
const fps = () => S.d.fps;
const toTime = (f) => (S.d.offset + f) / fps();
// the playhead: the video's frame, or (no video) the frame last clicked on a timeline
const playFrame = () => (S.d.video ? Math.max(0, Math.min(S.d.n_frames,
  Math.round($("video").currentTime * fps() - S.d.offset))) : S.cursor);
const secs = (f) => (f / fps()).toFixed(2);
const bout = () => S.bouts[S.cur];

// ------------------------------------------------------------------ lists
async function loadSessions() {
  const r = await api("/api/sessions");
  if (r.status !== 200) return;
  S.sessions = r.body.sessions;
  $("reviewer").textContent = "reviewer: " + r.body.reviewer;
  const ol = $("sessions");
  ol.innerHTML = "";
  for (const s of S.sessions) {
    const li = document.createElement("li");
    li.dataset.key = s.key;
    const prog = s.indexed ? (s.error ? s.error : `${s.reviewed} / ${s.bouts} bouts reviewed`)
      : "indexing…";
    li.innerHTML = `${s.key} <small>${s.setup} · ${s.split} · ${prog}</small>`;
    if (s.error) li.className = "error";
    li.onclick = () => openSession(s.key);
    ol.appendChild(li);
  }
  if (r.body.indexed < r.body.total_sessions) setTimeout(refreshLists, 2000);
}

async function loadQueue() {
  const r = await api(`/api/queue?order=${S.order}&limit=300`);
  if (r.status !== 200) return;
  S.queue = r.body;
  const q = r.body;
  $("progress").textContent = `${q.reviewed} / ${q.total} bouts reviewed` +
    (q.complete ? "" : " (indexing…)");
  const ol = $("queue");
  ol.innerHTML = "";
  for (const it of q.items) {
    const li = document.createElement("li");
    li.dataset.key = it.key;
    li.dataset.start = it.start;
    li.innerHTML = `${it.key} · <b>${it.behavior}</b> @${it.start}` +
      `<small>margin ${it.margin.toFixed(2)} · disagreement ${it.disagreement.toFixed(2)} · ` +
      `${it.stop - it.start} frames</small>`;
    li.onclick = () => openSession(it.key, it.start);
    ol.appendChild(li);
  }
  markLists();
}

function refreshLists() { loadSessions(); loadQueue(); }

function markLists() {
  for (const li of document.querySelectorAll("aside li")) {
    const here = li.dataset.key === S.key;
    const b = bout();
    li.classList.toggle("current", here && (li.dataset.start === undefined ||
      (b && +li.dataset.start === b.start)));
  }
}

// ------------------------------------------------------------------ one session
async function openSession(key, start = null) {
  const r = await api(`/api/session/${key}`);
  if (r.status !== 200) { toast(`cannot open ${key}`, true); return; }
  S.key = key;
  S.d = r.body;
  S.etag = r.body.etag;
  S.bouts = r.body.bouts || [];
  S.windows = {};
  S.mark = null;
  S.pendingAdd = null;
  history.replaceState(null, "", `/#${key}`);
  $("title").textContent = `${key} · ${S.d.setup} · ${S.d.split}` +
    (S.d.error ? ` — ${S.d.error}` : ` · ${S.d.n_frames} frames at ${S.d.fps} fps · ` +
      `base mode ${S.d.base} · saving to ${S.d.reviewed_file}`);
  const v = $("video");
  if (S.d.video) {
    $("novideo").hidden = true;
    v.hidden = false;
    if (v.dataset.src !== S.d.video) { v.src = S.d.video; v.dataset.src = S.d.video; }
  } else {
    v.removeAttribute("src");
    v.dataset.src = "";
    v.hidden = true;
    $("novideo").hidden = false;
  }
  $("labelkeys").innerHTML = S.d.behaviors.map((b, i) => `<kbd>${i + 1}</kbd> ${b}`).join(" ");
  $("legend").innerHTML = S.d.classes.map((c) =>
    `<span><i style="background:${color(c)}"></i>${c}</span>`).join("");
  let i = 0;
  if (start !== null) i = Math.max(0, S.bouts.findIndex((b) => b.start <= start && start < b.stop));
  select(S.bouts.length ? i : -1);
}

function select(i) {
  S.cur = Math.max(-1, Math.min(i, S.bouts.length - 1));
  const b = bout();
  S.cursor = b ? b.start : 0;
  if (b && S.d.video) seek(b.start);
  showBout();
  markLists();
  fetchWindows().then(draw);
  draw();
}

function seek(frame) {
  const v = $("video");
  S.playUntil = null;
  v.pause();
  v.currentTime = toTime(frame) + 0.5 / fps(); // the middle of the frame
}

function showBout() {
  const b = bout();
  const n = S.bouts.filter((x) => x.status !== "predicted").length;
  const head = `bout ${S.cur + 1} / ${S.bouts.length} · ${n} reviewed in this session`;
  if (!b) { $("bout").textContent = S.d && S.d.error ? "" : head; return; }
  const who = b.reviewer ? ` by ${b.reviewer} at ${b.reviewed_at}` : "";
  $("bout").innerHTML = `${head} · <span class="label" style="background:${color(b.behavior)}">` +
    `${b.behavior}</span> frames ${b.start}–${b.stop} (${secs(b.start)}–${secs(b.stop)} s)` +
    ` <span class="status">${b.status}${who}</span>` +
    (S.mark !== null ? ` · missed bout from frame ${S.mark}…` : "") +
    (S.pendingAdd ? ` · press a number for the bout ${S.pendingAdd.start}–${S.pendingAdd.stop}` : "");
}

function zoomRange() {
  const b = bout();
  if (!b) return [0, Math.min(S.d.n_frames, Math.round(10 * fps()))];
  const pad = Math.max(Math.round(2 * fps()), Math.round((b.stop - b.start) / 2));
  return [Math.max(0, b.start - pad), Math.min(S.d.n_frames, b.stop + pad)];
}

async function fetchWindows() {
  if (!S.d || S.d.error) return;
  const [a, z] = zoomRange();
  const key = S.key;
  await Promise.all(S.d.modes.map(async (m) => {
    const id = `${m}:${a}:${z}`;
    if (S.windows[id]) return;
    const r = await api(`/api/session/${key}/window?mode=${encodeURIComponent(m)}&start=${a}&stop=${z}`);
    if (r.status === 200 && S.key === key) S.windows[id] = r.body.probs;
  }));
}

// ------------------------------------------------------------------ drawing
function canvas(id) {
  const c = $(id);
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth;
  const h = +c.getAttribute("height");
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  c.style.height = h + "px";
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = "11px system-ui, sans-serif";
  return { g, w, h };
}

function rows() {
  // [name, kind, data]: the bouts under review, then each mode's ethogram and probabilities
  const out = [["review", "bouts", S.bouts.map((b) => [b.start, b.stop, b.behavior, b.status])]];
  for (const m of S.d.modes) {
    const md = S.d.modes_data[m];
    out.push([m, "bouts", md.bouts.map(([a, b, c]) => [a, b, S.d.classes[c], "predicted"])]);
    out.push(["", "probs", m]);
  }
  if (S.d.stage1) out.push(["stage 1", "line", S.d.stage1]);
  out.push(["proposals", "boxes", S.d.proposals]);
  return out;
}

const ROW_PX = { bouts: 15, probs: 24, line: 20, boxes: 11 };

function drawRows(id, a, z, binned) {
  const rs = S.d && !S.d.error ? rows() : [];
  const heights = rs.map(([, kind]) => ROW_PX[kind]);
  $(id).setAttribute("height", String(Math.max(20, heights.reduce((s, x) => s + x, 4))));
  const { g, w, h } = canvas(id);
  if (!rs.length) return;
  const scale = 1;
  const X = (f) => LEFT + ((f - a) / Math.max(z - a, 1)) * (w - LEFT - 4);
  let y = 2;
  rs.forEach(([name, kind, data], r) => {
    const rh = heights[r] * scale;
    g.fillStyle = "#333";
    g.fillText(name, 4, y + rh - 3);
    if (kind === "bouts") {
      for (const [s, e, lab, st] of data) {
        if (e < a || s > z) continue;
        g.globalAlpha = st === "predicted" ? 0.55 : 1;
        g.fillStyle = color(lab);
        g.fillRect(X(s), y + 1, Math.max(1, X(e) - X(s)), rh - 2);
      }
      g.globalAlpha = 1;
    } else if (kind === "probs") {
      const mode = data;
      const probs = binned ? S.d.modes_data[mode].probs : S.windows[`${mode}:${a}:${z}`];
      if (probs) {
        const n = probs[0].length;
        const fx = binned ? (i) => X(S.d.bins[i]) : (i) => X(a + i);
        for (let c = 1; c < probs.length; c++) {
          g.strokeStyle = COLORS[(c - 1) % COLORS.length];
          g.beginPath();
          for (let i = 0; i < n; i++) {
            const px = fx(i), py = y + rh - (probs[c][i] / 100) * (rh - 2);
            i ? g.lineTo(px, py) : g.moveTo(px, py);
          }
          g.stroke();
        }
      }
      g.strokeStyle = "#eee";
      g.strokeRect(LEFT, y, w - LEFT - 4, rh);
    } else if (kind === "line") {
      g.strokeStyle = "#555";
      g.beginPath();
      data.forEach((p, i) => {
        const px = X(S.d.bins[i]), py = y + rh - (p / 100) * (rh - 2);
        i ? g.lineTo(px, py) : g.moveTo(px, py);
      });
      g.stroke();
    } else {
      g.fillStyle = "#889";
      for (const [s, e] of data) if (e >= a && s <= z) g.fillRect(X(s), y + 1, Math.max(1, X(e) - X(s)), rh - 2);
    }
    y += rh;
  });
  const b = bout();
  if (b) {
    g.strokeStyle = "#000";
    g.lineWidth = 1.5;
    g.strokeRect(X(b.start), 1, Math.max(2, X(b.stop) - X(b.start)), h - 2);
    g.lineWidth = 1;
  }
  const f = playFrame();
  g.strokeStyle = "#d00";
  g.beginPath(); g.moveTo(X(f), 0); g.lineTo(X(f), h); g.stroke();
  if (S.mark !== null) {
    g.strokeStyle = "#090";
    g.beginPath(); g.moveTo(X(S.mark), 0); g.lineTo(X(S.mark), h); g.stroke();
  }
  $(id).onclick = (ev) => {
    const rect = $(id).getBoundingClientRect();
    const f = Math.round(a + ((ev.clientX - rect.left - LEFT) / (rect.width - LEFT - 4)) * (z - a));
    const i = S.bouts.findIndex((x) => x.start <= f && f < x.stop);
    if (i >= 0 && i !== S.cur) select(i);
    S.cursor = Math.max(0, Math.min(S.d.n_frames, f));
    if (S.d.video) seek(Math.min(S.d.n_frames - 1, S.cursor));
    draw();
  };
}

function draw() {
  if (!S.d) return;
  drawRows("overview", 0, S.d.n_frames, true);
  const [a, z] = zoomRange();
  drawRows("zoom", a, z, false);
}

// ------------------------------------------------------------------ corrections
function save(op) {
  // one save at a time, in order; each names the version it was made on
  S.busy = S.busy.then(() => send(op)).catch((e) => toast(String(e), true));
  return S.busy;
}

async function send(op, tries = 3) {
  const key = S.key;
  const r = await api(`/api/review/${key}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ etag: S.etag, ops: [op] }),
  });
  if (S.key !== key) return;
  if (r.status === 200) {
    apply(r.body, op);
    loadQueue();
  } else if (r.status === 409 && tries > 0) {
    // another tab (or reviewer) saved first: take its version, replay this correction on it
    S.etag = r.body.etag;
    S.bouts = r.body.bouts;
    toast("this session was changed elsewhere: merged with it");
    await send(op, tries - 1);
  } else {
    toast((r.body && r.body.error) || `save failed (${r.status})`, true);
    const st = await api(`/api/review/${key}`);
    if (st.status === 200) apply(st.body, null);
  }
}

function apply(state, op) {
  S.etag = state.etag;
  S.bouts = state.bouts;
  let at = op ? (op.op === "trim" ? op.new_start : op.start) : (bout() ? bout().start : 0);
  let i = S.bouts.findIndex((b) => b.start <= at && at < b.stop);
  if (i < 0) i = S.bouts.findIndex((b) => b.start >= at);
  if (op && (op.op === "accept" || op.op === "relabel") && i >= 0) i += 1; // on to the next bout
  S.cur = Math.min(i < 0 ? S.bouts.length - 1 : i, S.bouts.length - 1);
  if (op && op.op !== "split" && op.op !== "trim" && bout() && S.d.video) seek(bout().start);
  showBout();
  fetchWindows().then(draw);
  draw();
}

function range(b) { return { start: b.start, stop: b.stop }; }

// ------------------------------------------------------------------ keyboard
function playBout() {
  const b = bout();
  const v = $("video");
  if (!b || !S.d.video) return;
  v.currentTime = toTime(b.start);
  S.playUntil = toTime(b.stop);
  v.play().catch(() => {});
}

function nextInQueue() {
  if (!S.queue) return;
  const b = bout();
  const it = S.queue.items.find((x) => !(x.key === S.key && b && x.start === b.start));
  if (it) openSession(it.key, it.start);
  else toast("the queue is empty");
}

function onKey(ev) {
  if (ev.target.closest && ev.target.closest("input, select, textarea")) return;
  if (ev.ctrlKey || ev.metaKey || ev.altKey || !S.d) return;
  const k = ev.key;
  const b = bout();
  const v = $("video");
  const digit = /^[0-9]$/.test(k) ? +k : null;
  let handled = true;
  if (S.pendingAdd && digit !== null) {
    if (digit >= S.d.classes.length) { toast(`no behavior ${digit}`, true); return; }
    const p = S.pendingAdd;
    S.pendingAdd = null;
    save({ op: "add", start: p.start, stop: p.stop, behavior: S.d.classes[digit] });
  } else if (k === "j") select(S.cur + 1);
  else if (k === "k") select(S.cur - 1);
  else if (k === "n") nextInQueue();
  else if (k === "p") playBout();
  else if (k === " ") { S.playUntil = null; v.paused ? v.play().catch(() => {}) : v.pause(); }
  else if (k === "," || k === "." || k === "ArrowLeft" || k === "ArrowRight") {
    const step = (k === "," || k === "." ? 1 : Math.round(fps())) * (k === "," || k === "ArrowLeft" ? -1 : 1);
    if (S.d.video) { v.pause(); v.currentTime = Math.max(0, v.currentTime + step / fps()); }
    else { S.cursor = Math.max(0, Math.min(S.d.n_frames, S.cursor + step)); draw(); }
  }
  else if ((k === "a" || k === "Enter") && b) save({ op: "accept", ...range(b) });
  else if (digit !== null && b) {
    if (digit >= S.d.classes.length) { toast(`no behavior ${digit}`, true); return; }
    save({ op: "relabel", ...range(b), behavior: S.d.classes[digit] });
  } else if (k === "s" && b) save({ op: "split", ...range(b), at: playFrame() });
  else if (k === "[" && b) save({ op: "trim", ...range(b), new_start: playFrame(), new_stop: b.stop });
  else if (k === "]" && b) save({ op: "trim", ...range(b), new_start: b.start, new_stop: playFrame() });
  else if (k === "m") {
    const f = playFrame();
    if (S.mark === null) { S.mark = f; toast("start marked: go to the end of the bout, press m"); }
    else {
      const [s, e] = [Math.min(S.mark, f), Math.max(S.mark, f)];
      S.mark = null;
      if (e > s) { S.pendingAdd = { start: s, stop: e }; toast("press the number of its behavior"); }
    }
    showBout();
    draw();
  } else if (k === "Escape") { S.mark = null; S.pendingAdd = null; showBout(); draw(); }
  else handled = false;
  if (handled) ev.preventDefault();
}

// ------------------------------------------------------------------ start
function init() {
  // the token came in the URL; the server set it as a cookie: take it out of the address bar
  const params = new URLSearchParams(location.search);
  if (params.has("token")) history.replaceState(null, "", "/" + location.hash);
  document.addEventListener("keydown", onKey);
  $("order").onchange = (ev) => { S.order = ev.target.value; loadQueue(); };
  $("tab-queue").onclick = () => tab("queue");
  $("tab-sessions").onclick = () => tab("sessions");
  const v = $("video");
  v.addEventListener("timeupdate", () => {
    if (S.playUntil !== null && v.currentTime >= S.playUntil) { v.pause(); S.playUntil = null; }
    draw();
  });
  v.addEventListener("seeked", draw);
  window.addEventListener("resize", draw);
  window.addEventListener("focus", async () => {
    // another tab may have saved meanwhile
    if (!S.key) return;
    const r = await api(`/api/review/${S.key}`);
    if (r.status === 200 && r.body.etag !== S.etag) apply(r.body, null);
  });
  refreshLists();
  const key = decodeURIComponent(location.hash.slice(1));
  if (key) openSession(key);
}

function tab(name) {
  $("tab-queue").classList.toggle("on", name === "queue");
  $("tab-sessions").classList.toggle("on", name === "sessions");
  $("queue").hidden = name !== "queue";
  $("sessions").hidden = name !== "sessions";
}

init();
