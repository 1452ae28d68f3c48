// Slicing volumes and painting slices on canvases, with window/level for anatomy and a heat
// colour map for |error|.
//
// Views follow the neurological convention: the patient's right on the screen's right, anterior
// up in axial, superior up in coronal and sagittal (anterior to the left in sagittal).

// For each view: the world axes (0 = R, 1 = A, 2 = S) on the screen's horizontal and vertical,
// and the world direction that screen x (rightwards) and screen y (downwards) go.
export const VIEWS = {
  axial: { h: 0, hDir: 1, v: 1, vDir: -1, through: 2 },
  coronal: { h: 0, hDir: 1, v: 2, vDir: -1, through: 1 },
  sagittal: { h: 1, hDir: -1, v: 2, vDir: -1, through: 0 },
};

/**
 * Where a view's screen axes fall in a volume's voxel axes: `{hAxis, vAxis, sAxis, width,
 * height, depth, flipH, flipV, aspect}`; `aspect` is the slice's width/height in mm.
 */
export function sliceGeometry(volume, viewName) {
  const view = VIEWS[viewName];
  const axisOf = (world) => volume.axes.findIndex((axis) => axis.world === world);
  const hAxis = axisOf(view.h);
  const vAxis = axisOf(view.v);
  const sAxis = axisOf(view.through);
  const width = volume.shape[hAxis];
  const height = volume.shape[vAxis];
  return {
    hAxis,
    vAxis,
    sAxis,
    width,
    height,
    depth: volume.shape[sAxis],
    flipH: volume.axes[hAxis].sign * view.hDir < 0,
    flipV: volume.axes[vAxis].sign * view.vDir < 0,
    aspect: (width * volume.spacing[hAxis]) / (height * volume.spacing[vAxis]),
  };
}

/** Slice `index` (along `geometry.sAxis`) in screen order: row-major (height, width). */
export function extractSlice(volume, geometry, index) {
  const [nx, ny] = volume.shape;
  const strides = [1, nx, nx * ny];
  const { width, height } = geometry;
  const hStride = strides[geometry.hAxis];
  const vStride = strides[geometry.vAxis];
  const base = index * strides[geometry.sAxis];
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = base + (geometry.flipV ? height - 1 - y : y) * vStride;
    for (let x = 0; x < width; x++) {
      out[y * width + x] = volume.data[row + (geometry.flipH ? width - 1 - x : x) * hStride];
    }
  }
  return out;
}

/**
 * A grey map for anatomy: `range` maps the image to [0, 1] (its in-brain percentiles), then
 * `level` and `width` (in those units) window it, as a radiology viewer's window/level does.
 * Colour maps write one pixel's RGB at `pixels[offset..offset + 2]`.
 */
export function greyMap(range, level, width) {
  const scale = 255 / ((range.hi - range.lo) * width);
  const shift = (level - width / 2) * (range.hi - range.lo) + range.lo;
  return (value, pixels, offset) => {
    const grey = Math.min(Math.max((value - shift) * scale, 0), 255);
    pixels[offset] = grey;
    pixels[offset + 1] = grey;
    pixels[offset + 2] = grey;
  };
}

/** A heat map from black through red and yellow to white over [0, top]. */
export function heatMap(top) {
  return (value, pixels, offset) => {
    const t = Math.min(Math.max(value / top, 0), 1) * 3;
    pixels[offset] = Math.min(t, 1) * 255;
    pixels[offset + 1] = Math.min(Math.max(t - 1, 0), 1) * 255;
    pixels[offset + 2] = Math.max(t - 2, 0) * 255;
  };
}

/** Paint a slice (`extractSlice`'s output) on `canvas`, one canvas pixel per voxel. */
export function paint(canvas, slice, geometry, colour) {
  if (canvas.width !== geometry.width || canvas.height !== geometry.height) {
    canvas.width = geometry.width;
    canvas.height = geometry.height;
  }
  canvas.style.aspectRatio = String(geometry.aspect);
  const context = canvas.getContext("2d");
  const image = context.createImageData(geometry.width, geometry.height);
  const pixels = image.data;
  for (let i = 0; i < slice.length; i++) {
    colour(slice[i], pixels, 4 * i);
    pixels[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

/** The slice along the view's axis that holds the most brain: a good first look. */
export function busiestSlice(mask, volume, geometry) {
  const counts = new Uint32Array(geometry.depth);
  const [nx, ny] = volume.shape;
  const stride = [1, nx, nx * ny][geometry.sAxis];
  for (let i = 0; i < mask.length; i++) if (mask[i]) counts[Math.floor(i / stride) % geometry.depth] += 1;
  return counts.reduce((best, count, index) => (count > counts[best] ? index : best), 0);
}
