// Decoding the images the page shows (the files the user picked and the synthesized ones) into
// float volumes, with how each voxel axis lies in the patient's (R, A, S) world.

import * as nifti from "../vendor/nifti-reader-js/nifti-reader.js";

/**
 * A 3D image: `data[i + nx * (j + ny * k)]` holds voxel (i, j, k) of `shape` [nx, ny, nz].
 *
 * `axes[a]` says which world axis voxel axis `a` runs along (0 = R, 1 = A, 2 = S) and in which
 * direction (`sign` +1 or -1); `spacing[a]` is its voxel size in mm. A 2D image is one slice.
 */
export class Volume {
  constructor(data, shape, axes, spacing) {
    this.data = data;
    this.shape = shape;
    this.axes = axes;
    this.spacing = spacing;
  }

  get size() {
    return this.shape[0] * this.shape[1] * this.shape[2];
  }

  /** A volume of the same grid holding other values. */
  withData(data) {
    return new Volume(data, this.shape, this.axes, this.spacing);
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];
// Columns run right (+R) and rows run down (-A), so an axial view shows a PNG as it is.
const PNG_AXES = [
  { world: 0, sign: 1 },
  { world: 1, sign: -1 },
  { world: 2, sign: 1 },
];
const IDENTITY_AXES = [0, 1, 2].map((world) => ({ world, sign: 1 }));

/** Decode NIfTI (.nii, .nii.gz) or grey PNG bytes; throws an Error naming `name` if they are neither. */
export async function decodeImage(bytes, name) {
  const buffer = bytes instanceof ArrayBuffer ? bytes : bytes.slice().buffer;
  const head = new Uint8Array(buffer, 0, Math.min(4, buffer.byteLength));
  if (PNG_SIGNATURE.every((byte, i) => head[i] === byte)) return decodePng(buffer, name);
  return decodeNifti(buffer, name);
}

function decodeNifti(buffer, name) {
  let data = buffer;
  const head = new Uint8Array(buffer, 0, Math.min(2, buffer.byteLength));
  if (head[0] === 0x1f && head[1] === 0x8b) {
    try {
      data = nifti.decompress(buffer);
    } catch (error) {
      throw new Error(`${name}: not a readable gzip file (${error.message})`);
    }
  }
  if (data.byteLength < 348 || !nifti.isNIFTI(data)) throw new Error(`${name}: neither a NIfTI nor a PNG file`);
  const header = nifti.readHeader(data);
  const dims = header.dims;
  const extra = dims.slice(4, dims[0] + 1).filter((n) => n > 1);
  if (dims[0] < 2 || extra.length) throw new Error(`${name}: a ${dims[0]}D image; the viewer shows 2D and 3D ones`);
  const shape = [dims[1], dims[2], dims[0] >= 3 ? dims[3] : 1];
  const values = voxelValues(header, nifti.readImage(header, data), shape[0] * shape[1] * shape[2], name);
  const { axes, spacing } = orientation(header.affine);
  return new Volume(values, shape, axes, spacing);
}

// NIfTI datatype code -> [typed array, DataView getter] for the types MR images come in.
const NIFTI_TYPES = {
  2: [Uint8Array, "getUint8"],
  4: [Int16Array, "getInt16"],
  8: [Int32Array, "getInt32"],
  16: [Float32Array, "getFloat32"],
  64: [Float64Array, "getFloat64"],
  256: [Int8Array, "getInt8"],
  512: [Uint16Array, "getUint16"],
  768: [Uint32Array, "getUint32"],
};

function voxelValues(header, raw, count, name) {
  const type = NIFTI_TYPES[header.datatypeCode];
  if (!type) throw new Error(`${name}: NIfTI datatype ${header.datatypeCode} is not supported by the viewer`);
  const [ArrayType, getter] = type;
  if (raw.byteLength < count * ArrayType.BYTES_PER_ELEMENT) throw new Error(`${name}: the file is truncated`);
  const values = new Float32Array(count);
  if (header.littleEndian) {
    values.set(new ArrayType(raw, 0, count));
  } else {
    const view = new DataView(raw);
    for (let i = 0; i < count; i++) values[i] = view[getter](i * ArrayType.BYTES_PER_ELEMENT, false);
  }
  // scl_slope 0 means "no scaling" in the NIfTI standard.
  const slope = header.scl_slope || 1;
  const inter = header.scl_inter || 0;
  if (slope !== 1 || inter !== 0) for (let i = 0; i < count; i++) values[i] = values[i] * slope + inter;
  return values;
}

/** Which world axis each voxel axis runs along: its affine column's largest component. */
function orientation(affine) {
  const axes = [];
  const spacing = [];
  for (let a = 0; a < 3; a++) {
    const column = [0, 1, 2].map((r) => affine[r][a]);
    const world = column.reduce((best, value, r) => (Math.abs(value) > Math.abs(column[best]) ? r : best), 0);
    axes.push({ world, sign: column[world] < 0 ? -1 : 1 });
    spacing.push(Math.hypot(...column) || 1);
  }
  // A degenerate or very oblique affine could map two axes to one world axis: show voxel order.
  const distinct = new Set(axes.map((axis) => axis.world)).size === 3;
  return { axes: distinct ? axes : IDENTITY_AXES, spacing };
}

async function decodePng(buffer, name) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([buffer], { type: "image/png" }), {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
    });
  } catch {
    throw new Error(`${name}: not a readable PNG file`);
  }
  const { width, height } = bitmap;
  const context = new OffscreenCanvas(width, height).getContext("2d");
  context.drawImage(bitmap, 0, 0);
  // Canvas pixels are 8-bit RGBA: a 16-bit PNG is seen at 8 bits, plenty for looking at it.
  const rgba = context.getImageData(0, 0, width, height).data;
  const values = new Float32Array(width * height);
  for (let i = 0; i < values.length; i++) values[i] = rgba[4 * i];
  return new Volume(values, [width, height, 1], PNG_AXES, [1, 1, 1]);
}
