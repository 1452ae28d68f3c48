// The card of each model that served a synthesis: GET /models/{name}, shown in a dialog as text,
// with its figure fetched with the API key (an <img src> could not send the key).

import { getBlob, getJSON } from "./api.js";

const $ = (id) => document.getElementById(id);
let figureUrl = null;

/** One "model card" button per model name in `container`. */
export function showCardButtons(container, names, apiKey) {
  const buttons = names.map((name) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small";
    button.dataset.model = name;
    button.textContent = `Model card: ${name}`;
    button.addEventListener("click", () => openCard(name, apiKey));
    return button;
  });
  container.replaceChildren(...buttons);
}

/** The card's markdown without its YAML front matter (metadata for model hubs, not for reading). */
export function readableCard(markdown) {
  const front = markdown.match(/^---\n[\s\S]*?\n---\n+/);
  return front ? markdown.slice(front[0].length) : markdown;
}

async function openCard(name, apiKey) {
  const dialog = $("card-dialog");
  $("card-title").textContent = name;
  $("card-text").textContent = "loading…";
  const image = $("card-figure");
  image.hidden = true;
  if (figureUrl) URL.revokeObjectURL(figureUrl);
  figureUrl = null;
  if (!dialog.open) dialog.showModal();
  try {
    const detail = await getJSON(`/models/${encodeURIComponent(name)}`, apiKey);
    if (!detail.card) {
      $("card-text").textContent = `${name} has no model card (python -m training.cards writes one).`;
      return;
    }
    $("card-text").textContent = readableCard(detail.card.markdown);
    if (detail.card.figure_url) {
      figureUrl = URL.createObjectURL(await getBlob(detail.card.figure_url, apiKey));
      image.src = figureUrl;
      image.alt = `figure of the card of ${name}`;
      image.hidden = false;
    }
  } catch (error) {
    $("card-text").textContent = `Could not load the card: ${error.message}`;
  }
}

export function wireCardDialog() {
  $("card-close").addEventListener("click", () => $("card-dialog").close());
}
