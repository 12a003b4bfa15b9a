// The explore page: cards of the discovered clusters, and a photo editor. Plain JavaScript
// over the JSON API of xplore_tf/explore_app.py; every error is shown in #error.
"use strict";

const state = { info: null, clusters: [], photo: null, face: 0, sliders: {}, group: "", shared: null };
const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(method, url, body) {
  const options = { method };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers = { "Content-Type": "application/json" };
  }
  const response = await fetch(url, options);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response;
}

function label(cluster) {
  return cluster.name ? `${cluster.id} — ${cluster.name}` : `cluster ${cluster.id}`;
}

// ------------------------------------------------------------------ attributes
function card(cluster) {
  const div = document.createElement("div");
  div.className = "card";
  div.id = `card-${cluster.id}`;
  div.innerHTML = `
    <h3>Cluster ${cluster.id} <span class="size">· ${cluster.size} faces</span></h3>
    <div class="images">
      <img class="sheet" loading="lazy" alt="members of cluster ${cluster.id}"
           src="/api/clusters/${cluster.id}/sheet">
      <img class="where" loading="lazy" alt="where cluster ${cluster.id} edits"
           title="where it edits: mean change over the run's images (bright = much)"
           src="/api/clusters/${cluster.id}/where">
    </div>
    <div class="name">
      <input id="name-${cluster.id}" placeholder="a name, e.g. blond" maxlength="60">
      <button id="save-${cluster.id}">save</button>
      <span class="saved" id="saved-${cluster.id}"></span>
    </div>`;
  const input = div.querySelector("input");
  input.value = cluster.name;
  const save = async () => {
    showError("");
    try {
      await api("PUT", `/api/clusters/${cluster.id}/name`, { name: input.value });
      cluster.name = input.value.trim();
      $(`saved-${cluster.id}`).textContent = "saved";
      fillClusterChoice();
    } catch (e) { showError(e.message); }
  };
  div.querySelector("button").onclick = save;
  input.onkeydown = (event) => { if (event.key === "Enter") save(); };
  return div;
}

async function loadClusters() {
  state.clusters = await (await api("GET", "/api/clusters")).json();
  const cards = $("cards");
  cards.replaceChildren(...state.clusters.slice().sort((a, b) => b.size - a.size).map(card));
  fillClusterChoice();
}

function fillClusterChoice() {
  const select = $("add-cluster");
  const chosen = select.value;
  select.replaceChildren(...state.clusters.map((c) => new Option(label(c), c.id)));
  if (chosen) select.value = chosen;
}

// ------------------------------------------------------------------ photos
async function usePhoto(response) {
  state.photo = await response.json();
  state.face = state.photo.faces.length ? 0 : state.info.whole_image;
  const faces = $("faces");
  const buttons = state.photo.faces.map((box, i) => {
    const b = document.createElement("button");
    b.textContent = i === 0 ? "face 1 (largest)" : `face ${i + 1}`;
    b.dataset.face = i;
    return b;
  });
  const whole = document.createElement("button");
  whole.textContent = "the whole image as a face";
  whole.dataset.face = state.info.whole_image;
  buttons.push(whole);
  for (const b of buttons) b.onclick = () => { state.face = Number(b.dataset.face); pickFace(); };
  const note = document.createElement("span");
  note.className = "hint";
  note.textContent = state.photo.faces.length ? "" : " no face found: the whole image is edited";
  faces.replaceChildren(...buttons, note);
  pickFace();
}

function pickFace() {
  for (const b of $("faces").querySelectorAll("button")) {
    b.classList.toggle("active", Number(b.dataset.face) === state.face);
  }
  $("before").src = `/api/photos/${state.photo.id}?face=${state.face}`;
  $("after").removeAttribute("src");
  scheduleEdit();
}

async function uploadPhoto(file) {
  showError("");
  $("status").textContent = "finding faces…";
  const form = new FormData();
  form.append("file", file);
  try { await usePhoto(await api("POST", "/api/photos", form)); }
  catch (e) { showError(e.message); $("status").textContent = ""; }
}

async function loadRunImages() {
  const count = Math.min(state.info.run_images, 24);
  const strip = $("run-images");
  strip.replaceChildren();
  for (let i = 0; i < count; i++) {
    const img = document.createElement("img");
    img.src = `/api/run_images/${i}`;
    img.alt = `run image ${i}`;
    img.id = `run-image-${i}`;
    img.onclick = async () => {
      showError("");
      try { await usePhoto(await api("POST", `/api/photos/run/${i}`)); }
      catch (e) { showError(e.message); }
    };
    strip.appendChild(img);
  }
}

// ------------------------------------------------------------------ target and edits
function addSlider(id, strength = 1) {
  if (id in state.sliders) return;
  const cluster = state.clusters.find((c) => c.id === id);
  state.sliders[id] = strength;
  const row = document.createElement("div");
  row.className = "slider";
  row.id = `slider-${id}`;
  row.innerHTML = `<label for="strength-${id}">${label(cluster)}</label>
    <input id="strength-${id}" class="strength" type="range" min="0"
           max="${state.info.max_strength}" step="0.05" value="${strength}">
    <output id="value-${id}">${strength.toFixed(2)}</output>
    <button title="remove">×</button>`;
  const range = row.querySelector("input");
  range.oninput = () => {
    state.sliders[id] = Number(range.value);
    $(`value-${id}`).textContent = Number(range.value).toFixed(2);
    scheduleEdit();
  };
  row.querySelector("button").onclick = () => { delete state.sliders[id]; row.remove(); scheduleEdit(); };
  $("sliders").appendChild(row);
  state.group = "";
  $("group").textContent = "";
  showShared(false);
  scheduleEdit();
}

function showShared(visible) {
  $("shared-row").hidden = !visible;
  $("shared-strength-row").hidden = !visible || !$("shared").checked;
  state.shared = visible && $("shared").checked ? Number($("shared-strength").value) : null;
}

async function makeGroup(files) {
  showError("");
  $("group").textContent = "reading the group…";
  const form = new FormData();
  for (const f of files) form.append("files", f);
  try {
    const group = await (await api("POST", "/api/groups", form)).json();
    state.group = group.id;
    $("group").textContent = `group of ${group.images}: nearest cluster ${group.nearest_cluster}` +
      (group.warning ? ` — ${group.warning}` : "") + " (sliders are ignored while a group is used)";
    showShared(true);
    scheduleEdit();
  } catch (e) { showError(e.message); $("group").textContent = ""; }
}

function editRequest(format) {
  return {
    photo: state.photo.id, face: state.face, clusters: state.sliders, group: state.group,
    shared: state.group ? state.shared : null, format,
  };
}

let pending = null;
let running = false;
function scheduleEdit() {
  clearTimeout(pending);
  pending = setTimeout(runEdit, 120);
}

async function runEdit() {
  if (!state.photo || (!state.group && !Object.keys(state.sliders).length)) return;
  if (running) { scheduleEdit(); return; }
  running = true;
  showError("");
  $("status").textContent = "…";
  const started = performance.now();
  try {
    const blob = await (await api("POST", "/api/edit", editRequest("jpeg"))).blob();
    const old = $("after").src;
    $("after").src = URL.createObjectURL(blob);
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    $("status").textContent = `(${((performance.now() - started) / 1000).toFixed(2)} s)`;
    $("download").hidden = false;
  } catch (e) { showError(e.message); $("status").textContent = ""; }
  running = false;
}

async function download(event) {
  event.preventDefault();
  try {
    const response = await api("POST", "/api/edit", editRequest("png"));
    const name = (response.headers.get("Content-Disposition") || "").split('filename="')[1];
    const a = document.createElement("a");
    a.href = URL.createObjectURL(await response.blob());
    a.download = name ? name.replace(/"$/, "") : "edited.png";
    a.click();
  } catch (e) { showError(e.message); }
}

// ------------------------------------------------------------------ start
function showView(view) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== view;
}

async function start() {
  for (const tab of document.querySelectorAll(".tab")) tab.onclick = () => showView(tab.dataset.view);
  $("photo-file").onchange = (e) => { if (e.target.files[0]) uploadPhoto(e.target.files[0]); };
  $("group-files").onchange = (e) => { if (e.target.files.length) makeGroup(e.target.files); };
  $("shared").onchange = () => { showShared(true); scheduleEdit(); };
  $("shared-strength").oninput = () => {
    $("shared-value").textContent = Number($("shared-strength").value).toFixed(2);
    showShared(true);
    scheduleEdit();
  };
  $("add").onclick = () => addSlider(Number($("add-cluster").value));
  $("download").onclick = download;
  $("run-picker").ontoggle = () => { if ($("run-picker").open && !$("run-images").children.length) loadRunImages(); };
  try {
    state.info = await (await api("GET", "/api/info")).json();
    $("shared-strength").max = state.info.max_strength;
    $("model").textContent = `${state.info.clusters} clusters · model ${state.info.source}` +
      (state.info.full_resolution ? " · edits at the photo's resolution" : "");
    await loadClusters();
  } catch (e) { showError(e.message); }
}

start();
