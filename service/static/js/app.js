// The viewer page: pick sources and targets the service serves, give it files, synthesize, and
// look at sources, synthesized targets, ground truth and |error| side by side.

import { ApiError, base64Bytes, getJSON, postForm } from "./api.js";
import {
  MODALITIES,
  canonical,
  defaultChoice,
  describeTarget,
  keptTargets,
  routeOf,
  routeTable,
  routeWith,
} from "./configurations.js";
import { decodeImage } from "./images.js";
import { brainMask, brainRange, errorMap } from "./intensity.js";
import { showCardButtons, wireCardDialog } from "./model_card.js";
import { busiestSlice, extractSlice, greyMap, heatMap, paint, sliceGeometry } from "./render.js";
import { guessModality, showDownloads, showMetrics } from "./result_tables.js";

const DEFAULT_WINDOW = { level: 0.5, width: 1, errorTop: 0.3 };

const $ = (id) => document.getElementById(id);

const state = {
  apiKey: "",
  table: null, // what GET /models serves (configurations.js routeTable)
  src: [], // the sources and targets ticked, canonical order
  dst: [],
  files: new Map(), // modality -> File: a source or, for a target modality, the ground truth
  request: null, // the synthesis in flight ({done, abort})
  viewer: null, // what the result section shows
  downloadUrls: [],
};

// --- messages and progress ------------------------------------------------------------------

function showError(error) {
  $("error").textContent = error.message;
  $("error").hidden = false;
  if (error.status === 401) $("key-row").hidden = false;
}

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

function clearMessages() {
  $("error").hidden = true;
  showNotice("");
}

function setProgress(text, fraction) {
  $("progress").hidden = text === null;
  $("progress-text").textContent = text || "";
  const bar = $("progress-bar");
  if (fraction === null || fraction === undefined) bar.removeAttribute("value"); // indeterminate
  else bar.value = fraction;
}

// --- models and configurations --------------------------------------------------------------

/** The chosen configuration when the store serves it: `{src, dst}` in canonical order, else null. */
function currentConfiguration() {
  const route = state.table && routeOf(state.table, state.src, state.dst);
  return route ? { src: route.src, dst: route.dst } : null;
}

async function loadModels() {
  const body = await getJSON("/models", state.apiKey);
  state.table = routeTable(body);
  ({ src: state.src, dst: state.dst } = defaultChoice(state.table));
  renderPicker();
  renderSlots();
  if (!state.table.routes.size) throw new ApiError("The service has no model to serve.", { code: "no_model" });
}

/** Tick what is chosen; offer each source some route takes, and each target the store serves from these sources. */
function renderPicker() {
  const table = state.table;
  for (const box of document.querySelectorAll("#sources input")) {
    box.checked = state.src.includes(box.value);
    box.disabled = !table || !table.sources.has(box.value);
  }
  for (const box of document.querySelectorAll("#targets input")) {
    const route = table && routeWith(table, state.src, state.dst, box.value);
    box.checked = state.dst.includes(box.value);
    box.disabled = !route;
    box.closest("label").querySelector(".route").textContent = route ? describeTarget(route, box.value) : "";
  }
  $("choice").textContent = choiceHint(table);
}

function choiceHint(table) {
  if (!table) return "loading models…";
  if (!state.src.length) return "Tick the contrasts you have.";
  if (!keptTargets(table, state.src, MODALITIES).length) {
    return `No model synthesizes anything from ${state.src.join(" + ")}.`;
  }
  if (!state.dst.length) return "Tick the contrasts to synthesize.";
  return `${state.src.join(" + ")} → ${state.dst.join(" + ")}; beside each target, the model that makes it and its validation score.`;
}

function toggleSource(modality, on) {
  const src = on ? [...state.src, modality] : state.src.filter((m) => m !== modality);
  state.src = canonical(src);
  state.dst = keptTargets(state.table, state.src, state.dst);
  renderPicker();
  renderSlots();
}

function toggleTarget(modality, on) {
  state.dst = canonical(on ? [...state.dst, modality] : state.dst.filter((m) => m !== modality));
  renderPicker();
  renderSlots();
}

async function start() {
  try {
    const health = await getJSON("/healthz");
    if (health.auth_required) {
      $("key-row").hidden = false;
      $("choice").textContent = "needs the API key";
      showNotice("This service needs an API key: enter it above.");
      return;
    }
    await loadModels();
  } catch (error) {
    showError(error);
  }
}

async function applyKey() {
  state.apiKey = $("api-key").value.trim();
  clearMessages();
  try {
    await loadModels();
  } catch (error) {
    showError(error);
  }
}

// --- files ----------------------------------------------------------------------------------

/** One slot per source (required) and per target (its optional ground truth). */
function renderSlots() {
  const config = currentConfiguration();
  const slots = config
    ? [
        ...config.src.map((m) => ({ modality: m, label: `${m} source`, required: true })),
        ...config.dst.map((m) => ({ modality: m, label: `${m} ground truth (optional)`, required: false })),
      ]
    : [];
  $("slots").replaceChildren(...slots.map(slotItem));
  $("run").disabled = !config || state.request !== null;
}

function slotItem({ modality, label, required }) {
  const item = document.createElement("li");
  item.dataset.modality = modality;
  item.classList.toggle("required", required);
  const file = state.files.get(modality);
  item.classList.toggle("filled", Boolean(file));

  const name = document.createElement("span");
  name.className = "slot-label";
  name.textContent = label;
  const chosen = document.createElement("span");
  chosen.className = "slot-file";
  chosen.textContent = file ? file.name : "no file";
  const picker = document.createElement("label");
  picker.className = "button small";
  picker.textContent = "choose";
  const input = document.createElement("input");
  input.type = "file";
  input.hidden = true;
  input.dataset.modality = modality;
  input.addEventListener("change", () => assign(modality, input.files[0]));
  picker.append(input);
  item.append(name, chosen, picker);
  if (file) {
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "small";
    remove.textContent = "remove";
    remove.addEventListener("click", () => assign(modality, null));
    item.append(remove);
  }
  item.addEventListener("dragover", (event) => event.preventDefault());
  item.addEventListener("drop", (event) => {
    event.preventDefault();
    event.stopPropagation();
    assign(modality, event.dataTransfer.files[0]);
  });
  return item;
}

function assign(modality, file) {
  if (file) state.files.set(modality, file);
  else state.files.delete(modality);
  renderSlots();
}

/** Files dropped or chosen together: each goes to the modality its name says. */
function addFiles(files) {
  const unknown = [];
  for (const file of files) {
    const modality = guessModality(file.name);
    if (modality) state.files.set(modality, file);
    else unknown.push(file.name);
  }
  renderSlots();
  showNotice(unknown.length ? `Not placed (no modality in the name): ${unknown.join(", ")}. Drop them on a slot.` : "");
}

// --- synthesis ------------------------------------------------------------------------------

async function run() {
  const config = currentConfiguration();
  clearMessages();
  const missing = config.src.filter((m) => !state.files.has(m));
  if (missing.length) {
    showError(new Error(`Choose a file for ${missing.join(", ")}.`));
    return;
  }
  const truths = config.dst.filter((m) => state.files.has(m));
  const form = new FormData();
  for (const m of config.src) form.append(m, state.files.get(m));
  for (const m of truths) form.append(`truth_${m}`, state.files.get(m));
  const query = new URLSearchParams({ src: config.src.join(","), dst: config.dst.join(",") });

  $("result").hidden = true;
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  let phase = "upload";
  const timer = setInterval(() => {
    if (phase === "server") setProgress(`Synthesizing… ${elapsed()}`, null);
  }, 200);
  setProgress("Uploading…", 0);
  state.request = postForm(`/synthesize?${query}`, form, {
    apiKey: state.apiKey,
    onProgress: (next, fraction) => {
      phase = next;
      if (next === "upload") setProgress(`Uploading… ${Math.round(fraction * 100)} %`, fraction);
      else setProgress(`Synthesizing… ${elapsed()}`, null);
    },
  });
  $("run").disabled = true;
  $("cancel").hidden = false;
  try {
    const body = await state.request.done;
    phase = "decode";
    setProgress("Decoding the images…", null);
    await showResult(config, truths, body);
  } catch (error) {
    if (error.code === "aborted") showNotice("Cancelled.");
    else showError(error);
  } finally {
    clearInterval(timer);
    setProgress(null);
    state.request = null;
    $("run").disabled = !currentConfiguration();
    $("cancel").hidden = true;
  }
}

async function decodeFile(file) {
  return decodeImage(await file.arrayBuffer(), file.name);
}

/** Build the panels of a successful answer: sources, then per target synthetic, truth, |error|. */
async function showResult(config, truths, body) {
  const sources = await Promise.all(config.src.map((m) => decodeFile(state.files.get(m))));
  const mask = brainMask(sources);
  const panels = sources.map((volume, i) => ({
    title: config.src[i],
    caption: state.files.get(config.src[i]).name,
    volume,
    range: brainRange(volume, mask),
  }));
  for (const target of config.dst) {
    const result = body.targets[target];
    const synthetic = await decodeImage(base64Bytes(result.data), result.filename);
    panels.push({
      title: `synthetic ${target}`,
      caption: `model ${result.model}`,
      volume: synthetic,
      range: brainRange(synthetic, mask),
    });
    if (truths.includes(target)) {
      const truth = await decodeFile(state.files.get(target));
      panels.push({ title: `${target} ground truth`, caption: state.files.get(target).name, volume: truth, range: brainRange(truth, mask) });
      const { map, rms } = errorMap(synthetic, truth, mask);
      panels.push({ title: `|error| ${target}`, caption: `in-brain RMS ${rms.toFixed(4)}`, volume: map, error: true, rms });
    }
  }
  showMetrics($("metrics"), config, body);
  state.downloadUrls = showDownloads($("downloads"), config, body, state.downloadUrls);
  showCardButtons($("model-cards"), body.models.map((m) => m.name), state.apiKey);
  const models = body.models.map((m) => m.name).join(", ");
  $("summary").textContent =
    `${config.src.join(" + ")} → ${config.dst.join(" + ")} by ${models}: ` +
    `${body.input.shape.join(" × ")} ${body.input.format}, ${body.seconds.toFixed(1)} s on the server.`;
  startViewer(panels, mask);
}

// --- the viewer -----------------------------------------------------------------------------

function startViewer(panels, mask) {
  const first = panels[0].volume;
  const slices = {};
  for (const view of ["axial", "coronal", "sagittal"]) slices[view] = busiestSlice(mask, first, sliceGeometry(first, view));
  state.viewer = { panels, slices, view: "axial", ...DEFAULT_WINDOW };
  const isVolume = first.shape[2] > 1;
  for (const radio of document.querySelectorAll("input[name=view]")) {
    radio.disabled = !isVolume;
    radio.checked = radio.value === "axial";
  }
  $("slice").closest("label").hidden = !isVolume;
  $("error-top").closest("label").hidden = !panels.some((p) => p.error);

  $("panels").replaceChildren(
    ...panels.map((panel) => {
      const figure = document.createElement("figure");
      figure.className = panel.error ? "panel error-panel" : "panel";
      const title = document.createElement("figcaption");
      title.innerHTML = "<strong></strong><span></span>";
      title.querySelector("strong").textContent = panel.title;
      title.querySelector("span").textContent = panel.caption;
      title.querySelector("span").title = panel.caption;
      panel.canvas = document.createElement("canvas");
      panel.canvas.addEventListener("wheel", scrollSlices, { passive: false });
      figure.append(title, panel.canvas);
      if (panel.error) {
        const legend = document.createElement("div");
        legend.className = "legend";
        legend.innerHTML = "<span>0</span><i></i><span class=legend-top></span>";
        figure.append(legend);
      }
      return figure;
    }),
  );
  $("result").hidden = false;
  syncControls();
  draw();
}

function syncControls() {
  const viewer = state.viewer;
  const geometry = sliceGeometry(viewer.panels[0].volume, viewer.view);
  $("slice").max = String(geometry.depth - 1);
  $("slice").value = String(viewer.slices[viewer.view]);
  $("level").value = String(viewer.level);
  $("width").value = String(viewer.width);
  $("error-top").value = String(viewer.errorTop);
}

function draw() {
  const viewer = state.viewer;
  const index = viewer.slices[viewer.view];
  for (const panel of viewer.panels) {
    const geometry = sliceGeometry(panel.volume, viewer.view);
    const colour = panel.error ? heatMap(viewer.errorTop) : greyMap(panel.range, viewer.level, viewer.width);
    paint(panel.canvas, extractSlice(panel.volume, geometry, index), geometry, colour);
  }
  const depth = sliceGeometry(viewer.panels[0].volume, viewer.view).depth;
  $("slice-value").textContent = `${index + 1} / ${depth}`;
  $("level-value").textContent = viewer.level.toFixed(2);
  $("width-value").textContent = viewer.width.toFixed(2);
  $("error-top-value").textContent = viewer.errorTop.toFixed(2);
  for (const top of document.querySelectorAll(".legend-top")) top.textContent = viewer.errorTop.toFixed(2);
}

function scrollSlices(event) {
  const viewer = state.viewer;
  event.preventDefault();
  const depth = sliceGeometry(viewer.panels[0].volume, viewer.view).depth;
  const next = viewer.slices[viewer.view] + (event.deltaY > 0 ? -1 : 1);
  viewer.slices[viewer.view] = Math.min(Math.max(next, 0), depth - 1);
  syncControls();
  draw();
}

function onControl(name, parse = Number) {
  return (event) => {
    const viewer = state.viewer;
    if (name === "slice") viewer.slices[viewer.view] = parse(event.target.value);
    else viewer[name] = parse(event.target.value);
    if (name === "view") syncControls();
    draw();
  };
}

// --- wiring ---------------------------------------------------------------------------------

function wire() {
  for (const box of document.querySelectorAll("#sources input")) {
    box.addEventListener("change", () => toggleSource(box.value, box.checked));
  }
  for (const box of document.querySelectorAll("#targets input")) {
    box.addEventListener("change", () => toggleTarget(box.value, box.checked));
  }
  $("files").addEventListener("change", (event) => {
    addFiles(event.target.files);
    event.target.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addFiles(event.dataTransfer.files);
  });
  // A file dropped beside the targets must not make the browser leave the page to open it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  $("key-row").addEventListener("submit", (event) => {
    event.preventDefault();
    applyKey();
  });
  $("run").addEventListener("click", run);
  $("cancel").addEventListener("click", () => state.request?.abort());

  $("slice").addEventListener("input", onControl("slice"));
  $("level").addEventListener("input", onControl("level"));
  $("width").addEventListener("input", onControl("width"));
  $("error-top").addEventListener("input", onControl("errorTop"));
  for (const radio of document.querySelectorAll("input[name=view]")) {
    radio.addEventListener("change", onControl("view", String));
  }
  $("reset").addEventListener("click", () => {
    Object.assign(state.viewer, DEFAULT_WINDOW);
    syncControls();
    draw();
  });
}

wire();
wireCardDialog();
start();
