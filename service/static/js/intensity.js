// Intensities as the service sees them: the brain mask, the per-image 0.5/99.5 % range inside
// it, and the |error| map in that scaling. They follow synnet.normalization and the BraSyn
// in-brain scaling of synnet.metrics, so the map shows exactly the error behind "PSNR (brain)".

export const LOWER_PERCENTILE = 0.5;
export const UPPER_PERCENTILE = 99.5;

/** The union of the nonzero voxels of co-registered volumes (the service's default brain mask). */
export function brainMask(volumes) {
  const mask = new Uint8Array(volumes[0].size);
  for (const volume of volumes) {
    const data = volume.data;
    for (let i = 0; i < mask.length; i++) if (data[i] !== 0) mask[i] = 1;
  }
  return mask;
}

/** The `p`-th percentile of sorted values, interpolated linearly as numpy does by default. */
function percentileOfSorted(sorted, p) {
  const position = ((sorted.length - 1) * p) / 100;
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

/**
 * `{lo, hi}`: the 0.5 and 99.5 percentiles of `volume` inside `mask`, as
 * synnet.normalization.intensity_range measures them; (0, 1) without brain, lo + 1 when flat.
 */
export function brainRange(volume, mask) {
  let count = 0;
  for (let i = 0; i < mask.length; i++) count += mask[i];
  if (count === 0) return { lo: 0, hi: 1 };
  const values = new Float32Array(count);
  const data = volume.data;
  for (let i = 0, n = 0; i < mask.length; i++) if (mask[i]) values[n++] = data[i];
  values.sort();
  const lo = percentileOfSorted(values, LOWER_PERCENTILE);
  let hi = percentileOfSorted(values, UPPER_PERCENTILE);
  if (hi <= lo) hi = lo + 1;
  return { lo, hi };
}

function scaledClipped(value, range) {
  return Math.min(Math.max((value - range.lo) / (range.hi - range.lo), 0), 1);
}

/**
 * |pred - truth| with each image brought to [0, 1] by its own in-brain range, zero outside the
 * brain. Returns `{map, rms}`: a volume of the same grid, and the root mean square over the
 * brain, whose PSNR (-20 log10 rms) is the service's `psnr_brain`.
 */
export function errorMap(pred, truth, mask) {
  const predRange = brainRange(pred, mask);
  const truthRange = brainRange(truth, mask);
  const errors = new Float32Array(mask.length);
  let squared = 0;
  let count = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const error = Math.abs(scaledClipped(pred.data[i], predRange) - scaledClipped(truth.data[i], truthRange));
    errors[i] = error;
    squared += error * error;
    count += 1;
  }
  return { map: pred.withData(errors), rms: count ? Math.sqrt(squared / count) : 0 };
}
