// What the page lists beside the panels of a result: the metrics table and the download links, and
// which modality a dropped file's name stands for.

import { base64Bytes } from "./api.js";

// File-name tokens -> modality, as synnet.modalities reads them (BraTS 2018-2021 and 2023 names).
const ALIASES = {
  t1: "T1",
  t1n: "T1",
  t1w: "T1",
  t1c: "T1c",
  t1ce: "T1c",
  t1gd: "T1c",
  t2: "T2",
  t2w: "T2",
  flair: "FLAIR",
  t2f: "FLAIR",
};

/** The modality a file name stands for (its last token that is a known alias), or null. */
export function guessModality(filename) {
  const stem = filename.toLowerCase().replace(/\.(nii\.gz|nii|png|gz)$/, "");
  const tokens = stem.split(/[_\-. ]+/).reverse();
  const known = tokens.find((token) => token in ALIASES);
  return known ? ALIASES[known] : null;
}

function formatMetric(value, identical, digits) {
  if (value === null || value === undefined) return identical ? "∞" : "–";
  return value.toFixed(digits);
}

/** One row per target that had a ground truth, in `table`'s body; the table hidden when there is none. */
export function showMetrics(table, config, body) {
  const rows = config.dst
    .filter((t) => body.targets[t].metrics)
    .map((target) => {
      const metrics = body.targets[target].metrics;
      const row = document.createElement("tr");
      row.dataset.target = target;
      const cells = [
        [target, "target"],
        [formatMetric(metrics.psnr, metrics.identical, 2), "psnr"],
        [formatMetric(metrics.ssim, metrics.identical, 4), "ssim"],
        [formatMetric(metrics.psnr_brain, metrics.identical, 2), "psnr_brain"],
        [formatMetric(metrics.ssim_brain, metrics.identical, 4), "ssim_brain"],
      ];
      for (const [text, metric] of cells) {
        const cell = document.createElement("td");
        cell.textContent = text;
        cell.dataset.metric = metric;
        row.append(cell);
      }
      return row;
    });
  table.querySelector("tbody").replaceChildren(...rows);
  table.hidden = rows.length === 0;
}

/** A download link per target in `container`; returns the object URLs made, to revoke with `previous`'s. */
export function showDownloads(container, config, body, previous) {
  for (const url of previous) URL.revokeObjectURL(url);
  const urls = [];
  const links = config.dst.map((target) => {
    const result = body.targets[target];
    const url = URL.createObjectURL(new Blob([base64Bytes(result.data)], { type: result.media_type }));
    urls.push(url);
    const link = document.createElement("a");
    link.className = "button";
    link.href = url;
    link.download = result.filename;
    link.dataset.target = target;
    link.textContent = `Download ${result.filename}`;
    return link;
  });
  container.replaceChildren(...links);
  return urls;
}
