// rootseg annotate: plain JavaScript, no build step. Four canvases at the image's full resolution are stacked
// and zoomed together with one CSS transform: the image, the model's segmentation, the annotation (what is
// saved) and RootSAM's proposal with its clicks. Every annotation pixel is kept as exactly red (root), green
// (background) or transparent (unlabelled): anti-aliased brush edges are snapped after each stroke, so what
// you see is what is saved and the server's colour check passes.
const $ = (id) => document.getElementById(id);
const layers = { image: $("image-layer"), seg: $("seg-layer"), ann: $("ann-layer"), prop: $("prop-layer") };
const ctx = Object.fromEntries(Object.entries(layers).map(([k, c]) => [k, c.getContext("2d", { willReadFrequently: k === "ann" })]));
const COLOURS = { root: "rgb(255,0,0)", background: "rgb(0,255,0)" };
const S = {
  config: null, queue: [], current: null, width: 0, height: 0, scale: 1, tx: 0, ty: 0,
  tool: "root", size: 24, actions: [], base: null, stroke: null, drag: null, dirty: false,
  clicks: [], proposal: null, space: false, segmented: null,
};
window.rootsegAnnotate = { state: S, toScreen, save, load };  // for the browser test

// ---------------------------------------------------------------------------------------------- server
async function api(path, options = {}) {
  const headers = { "X-Rootseg-Client": "1", ...(options.headers || {}) };
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (!response.ok && response.status !== 404) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}
const bitmapOf = async (response) => createImageBitmap(await response.blob());
const id = (stem) => encodeURIComponent(stem);

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

// ----------------------------------------------------------------------------------------------- view
function applyTransform() {
  $("stage").style.transform = `translate(${S.tx}px, ${S.ty}px) scale(${S.scale})`;
  drawProposal();
}
function fit() {
  const box = $("viewport").getBoundingClientRect();
  S.scale = Math.min(box.width / S.width, box.height / S.height) || 1;
  S.tx = (box.width - S.width * S.scale) / 2;
  S.ty = (box.height - S.height * S.scale) / 2;
  applyTransform();
}
function toImage(event) {
  const box = $("viewport").getBoundingClientRect();
  return [(event.clientX - box.left - S.tx) / S.scale, (event.clientY - box.top - S.ty) / S.scale];
}
function toScreen(x, y) {
  const box = $("viewport").getBoundingClientRect();
  return [box.left + S.tx + x * S.scale, box.top + S.ty + y * S.scale];
}
function zoom(event) {
  event.preventDefault();
  const box = $("viewport").getBoundingClientRect();
  const mx = event.clientX - box.left, my = event.clientY - box.top;
  const scale = Math.min(32, Math.max(0.02, S.scale * Math.exp(-event.deltaY * 0.0015)));
  S.tx = mx - ((mx - S.tx) * scale) / S.scale;
  S.ty = my - ((my - S.ty) * scale) / S.scale;
  S.scale = scale;
  applyTransform();
}

// ------------------------------------------------------------------------------------------ annotation
function snap(x0, y0, w, h) {
  // every pixel to exactly red, green or transparent (alpha < 128 -> unlabelled)
  x0 = Math.max(0, Math.floor(x0)); y0 = Math.max(0, Math.floor(y0));
  w = Math.min(S.width - x0, Math.ceil(w)); h = Math.min(S.height - y0, Math.ceil(h));
  if (w <= 0 || h <= 0) return;
  const data = ctx.ann.getImageData(x0, y0, w, h);
  const d = data.data;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] < 128) { d[i] = d[i + 1] = d[i + 2] = d[i + 3] = 0; continue; }
    const root = d[i] >= d[i + 1];
    d[i] = root ? 255 : 0; d[i + 1] = root ? 0 : 255; d[i + 2] = 0; d[i + 3] = 255;
  }
  ctx.ann.putImageData(data, x0, y0);
}
function drawStroke(action, from = 0) {
  const c = ctx.ann, pts = action.points;
  c.save();
  c.globalCompositeOperation = action.tool === "eraser" ? "destination-out" : "source-over";
  c.strokeStyle = c.fillStyle = COLOURS[action.tool] || "#000";
  c.lineWidth = action.size; c.lineCap = "round"; c.lineJoin = "round";
  if (pts.length === 1) {
    c.beginPath(); c.arc(pts[0][0], pts[0][1], action.size / 2, 0, 2 * Math.PI); c.fill();
  } else {
    c.beginPath(); c.moveTo(...pts[Math.max(0, from - 1)]);
    for (let i = Math.max(1, from); i < pts.length; i++) c.lineTo(...pts[i]);
    c.stroke();
  }
  c.restore();
}
function strokeBox(action) {
  const xs = action.points.map((p) => p[0]), ys = action.points.map((p) => p[1]), r = action.size / 2 + 2;
  return [Math.min(...xs) - r, Math.min(...ys) - r, Math.max(...xs) - Math.min(...xs) + 2 * r, Math.max(...ys) - Math.min(...ys) + 2 * r];
}
function redrawAnnotation() {
  ctx.ann.clearRect(0, 0, S.width, S.height);
  if (S.base) ctx.ann.drawImage(S.base, 0, 0);
  for (const action of S.actions) {
    if (action.type === "stroke") drawStroke(action);
    else ctx.ann.drawImage(action.mask, 0, 0);
  }
  snap(0, 0, S.width, S.height);
}
function undo() {
  if (!S.actions.length) return status("nothing to undo");
  S.actions.pop();
  S.dirty = true;
  redrawAnnotation();
  status(`undone (${S.actions.length} change(s) left)`);
}

// ----------------------------------------------------------------------------------------- pointer
function startPointer(event) {
  if (!S.current) return;
  const pan = event.button === 1 || event.button === 2 || S.tool === "pan" || S.space;
  $("viewport").setPointerCapture(event.pointerId);
  if (pan) { S.drag = { x: event.clientX - S.tx, y: event.clientY - S.ty }; return; }
  if (event.button !== 0) return;
  const [x, y] = toImage(event);
  if (S.tool === "click") return addClick(x, y, event.shiftKey ? 0 : 1);
  S.stroke = { type: "stroke", tool: S.tool, size: S.size, points: [[x, y]] };
  drawStroke(S.stroke);
}
function movePointer(event) {
  if (S.drag) { S.tx = event.clientX - S.drag.x; S.ty = event.clientY - S.drag.y; applyTransform(); return; }
  if (!S.stroke) return;
  S.stroke.points.push(toImage(event));
  drawStroke(S.stroke, S.stroke.points.length - 1);
}
function endPointer() {
  S.drag = null;
  if (!S.stroke) return;
  const action = S.stroke;
  S.stroke = null;
  snap(...strokeBox(action));
  S.actions.push(action);
  S.dirty = true;
}

// ---------------------------------------------------------------------------------------- RootSAM clicks
async function addClick(x, y, label) {
  S.clicks.push([Math.round(x), Math.round(y), label]);
  drawProposal();
  if (!S.clicks.some((c) => c[2] === 1)) return status("add a root click (left click) first");
  status("RootSAM: segmenting…");
  try {
    const response = await api(`/api/images/${id(S.current)}/clicks`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ points: S.clicks }),
    });
    S.proposal = await maskCanvas(await bitmapOf(response));
    drawProposal();
    status("proposal ready: Accept mask (A) adds it as root");
  } catch (error) { status(error.message, true); }
}
async function maskCanvas(bitmap) {
  // a 0/255 grey mask -> a canvas that is red where the mask is set and transparent elsewhere
  const canvas = document.createElement("canvas");
  canvas.width = S.width; canvas.height = S.height;
  const c = canvas.getContext("2d");
  c.drawImage(bitmap, 0, 0);
  const data = c.getImageData(0, 0, S.width, S.height), d = data.data;
  for (let i = 0; i < d.length; i += 4) {
    const on = d[i] > 127;
    d[i] = on ? 255 : 0; d[i + 1] = 0; d[i + 2] = 0; d[i + 3] = on ? 255 : 0;
  }
  c.putImageData(data, 0, 0);
  return canvas;
}
function drawProposal() {
  const c = ctx.prop;
  c.clearRect(0, 0, S.width, S.height);
  if (S.proposal) {
    c.drawImage(S.proposal, 0, 0);
    c.globalCompositeOperation = "source-in"; c.fillStyle = "#ff0"; c.fillRect(0, 0, S.width, S.height);
    c.globalCompositeOperation = "source-over";
  }
  const r = 7 / S.scale;
  for (const [x, y, label] of S.clicks) {
    c.fillStyle = label ? "#0f0" : "#f0f"; c.beginPath(); c.arc(x, y, r, 0, 2 * Math.PI); c.fill();
  }
}
function acceptProposal() {
  if (!S.proposal) return status("no proposal to accept: click on a root with the Clicks tool");
  S.actions.push({ type: "mask", mask: S.proposal });
  S.dirty = true;
  clearClicks();
  redrawAnnotation();
  status("mask added as root");
}
function clearClicks() { S.clicks = []; S.proposal = null; drawProposal(); }

// ------------------------------------------------------------------------------------- images and queue
async function load(stem) {
  if (S.dirty && !confirm("Discard the unsaved changes of this image?")) return;
  status(`loading ${stem}…`);
  const image = await bitmapOf(await api(`/api/images/${id(stem)}/image`));
  S.current = stem; S.width = image.width; S.height = image.height;
  for (const canvas of Object.values(layers)) { canvas.width = S.width; canvas.height = S.height; }
  ctx.image.drawImage(image, 0, 0);
  const annotation = await api(`/api/images/${id(stem)}/annotation`);
  S.base = annotation.ok ? await bitmapOf(annotation) : null;
  if (annotation.ok) $("split").value = annotation.headers.get("X-Split") || "train";
  S.actions = []; S.dirty = false; clearClicks(); redrawAnnotation(); fit(); renderQueue();
  status(`${stem} (${S.width} x ${S.height})`);
  if (S.config.model) loadSegmentation(stem);
}
async function loadSegmentation(stem) {
  ctx.seg.clearRect(0, 0, S.width, S.height);
  S.segmented = null;
  try {
    const response = await api(`/api/images/${id(stem)}/segmentation`);
    if (response.ok && S.current === stem) {
      ctx.seg.drawImage(await bitmapOf(response), 0, 0);
      S.segmented = stem;
    }
  } catch (error) { status(`segmentation: ${error.message}`, true); }
}
async function save() {
  if (!S.current) return;
  const stem = S.current, split = $("split").value;
  const blob = await new Promise((resolve) => layers.ann.toBlob(resolve, "image/png"));
  status("saving…");
  try {
    const response = await api(`/api/images/${id(stem)}/annotation?split=${split}`, {
      method: "PUT", headers: { "Content-Type": "image/png" }, body: blob,
    });
    const result = await response.json();
    S.dirty = false;
    status(`saved ${result.saved}`);
    refreshQueue();
  } catch (error) { status(`not saved: ${error.message}`, true); }
}
function renderQueue() {
  const list = $("queue");
  list.replaceChildren(...S.queue.map((item) => {
    const li = document.createElement("li");
    li.className = item.id === S.current ? "current" : "";
    const score = item.score == null ? "" : `${(100 * item.score).toFixed(1)}%`;
    li.innerHTML = `<span class="name"></span><span class="tag ${item.split || ""}">${item.split || ""} ${score}</span>`;
    li.querySelector(".name").textContent = item.name;
    li.title = item.error || (item.score == null ? "not scored yet" : "share of uncertain pixels");
    li.onclick = () => load(item.id);
    return li;
  }));
}
async function refreshQueue() {
  const queue = await (await api("/api/queue")).json();
  S.queue = queue.images;
  $("queue-info").textContent = `${S.queue.length} images, ` +
    (queue.rank === "uncertainty" ? "most uncertain first" : "by name") + (queue.pending ? ` (${queue.pending} to score)` : "");
  renderQueue();
  if (queue.pending) setTimeout(refreshQueue, 3000);
}
function next() {
  const i = S.queue.findIndex((item) => item.id === S.current);
  if (S.queue.length) load(S.queue[(i + 1) % S.queue.length].id);
}

// ---------------------------------------------------------------------------------------------- fine-tune
async function fineTune(start) {
  try {
    const response = await api("/api/finetune", start ? { method: "POST" } : {});
    const s = await response.json();
    const f1 = (s.progress || []).map((r) => r["val/f1"].toFixed(3)).join(", ");
    $("ft-status").textContent = s.state === "running" ? `fine-tuning: epoch ${s.epochs_done || 0}/${s.max_epochs}${f1 ? `, val F1 ${f1}` : ""}`
      : s.state === "evaluating" ? "fine-tune: comparing on val…" : s.message || "";
    if (s.state === "running" || s.state === "evaluating") setTimeout(() => fineTune(false), 2000);
    else if (s.swapped && S.current) { loadSegmentation(S.current); refreshQueue(); }
  } catch (error) { $("ft-status").textContent = `fine-tune: ${error.message}`; }
}

// ------------------------------------------------------------------------------------------------ setup
function setTool(tool) {
  S.tool = tool;
  document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("active", b.dataset.tool === tool));
  $("viewport").classList.toggle("panning", tool === "pan");
}
function setSize(size) { S.size = Math.max(1, Math.min(200, size)); $("size").value = S.size; $("size-out").textContent = S.size; }
const KEYS = {
  r: () => setTool("root"), g: () => setTool("background"), e: () => setTool("eraser"), p: () => setTool("pan"),
  c: () => S.config.clicks && setTool("click"), a: acceptProposal, escape: clearClicks, s: save, n: next, f: fit,
  z: undo, "[": () => setSize(S.size - 4), "]": () => setSize(S.size + 4),
  o: () => { $("show-seg").checked = !$("show-seg").checked; layers.seg.hidden = !$("show-seg").checked; },
};
function keydown(event) {
  if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
  if (event.key === " ") { S.space = true; event.preventDefault(); return; }
  const action = KEYS[event.key.toLowerCase()];
  if (action && (!event.ctrlKey || "sz".includes(event.key.toLowerCase()))) { event.preventDefault(); action(); }
}
async function main() {
  if (location.search.includes("token=")) history.replaceState(null, "", "/");  // the cookie carries it now
  S.config = await (await api("/api/config")).json();
  $("project").textContent = `${S.config.project}, model: ${S.config.model ? S.config.model.kind : "none"}`;
  $("click-tool").hidden = $("click-group").hidden = !S.config.clicks;
  $("finetune").disabled = !S.config.model || !S.config.finetune;
  document.querySelectorAll("[data-tool]").forEach((b) => { b.onclick = () => setTool(b.dataset.tool); });
  $("size").oninput = () => setSize(+$("size").value);
  Object.assign($("undo"), { onclick: undo }); Object.assign($("fit"), { onclick: fit });
  Object.assign($("save"), { onclick: save }); Object.assign($("next"), { onclick: next });
  Object.assign($("accept"), { onclick: acceptProposal }); Object.assign($("clear-clicks"), { onclick: clearClicks });
  $("finetune").onclick = () => fineTune(true);
  $("show-seg").onchange = () => { layers.seg.hidden = !$("show-seg").checked; };
  $("show-ann").onchange = () => { layers.ann.hidden = !$("show-ann").checked; };
  const viewport = $("viewport");
  viewport.addEventListener("pointerdown", startPointer);
  viewport.addEventListener("pointermove", movePointer);
  viewport.addEventListener("pointerup", endPointer);
  viewport.addEventListener("pointercancel", endPointer);
  viewport.addEventListener("wheel", zoom, { passive: false });
  viewport.addEventListener("contextmenu", (event) => event.preventDefault());
  document.addEventListener("keydown", keydown);
  document.addEventListener("keyup", (event) => { if (event.key === " ") S.space = false; });
  window.addEventListener("beforeunload", (event) => { if (S.dirty) event.preventDefault(); });
  setTool("root"); setSize(24);
  await refreshQueue();
  if (S.queue.length) await load(S.queue[0].id);
  fineTune(false);
  document.body.dataset.ready = "1";
}
main().catch((error) => status(error.message, true));
