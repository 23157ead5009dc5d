/**
 * Just enough PNG to see whether a chart drew anything: decode (8-bit greyscale, RGB, RGBA, with or
 * without alpha; not interlaced, not palette, which is what resvg writes) and count the coloured pixels
 * inside the plot area.
 */
import { inflateSync } from 'node:zlib';

export interface Image { width: number; height: number; rgba: Uint8Array }

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Decodes a PNG to RGBA; throws on what it does not handle, saying what. */
export function decodePng(bytes: Uint8Array): Image {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error('not a PNG (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0, height = 0, depth = 0, colorType = 0, interlace = 0;
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 8 <= bytes.length;) {
    const len = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      width = view.getUint32(at + 8); height = view.getUint32(at + 12);
      depth = data[8]!; colorType = data[9]!; interlace = data[12]!;
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    at += 12 + len;
  }
  const channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  if (depth !== 8 || channels === undefined || interlace !== 0) throw new Error(`PNG of bit depth ${depth}, colour type ${colorType}, interlace ${interlace}: not handled`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new Error(`PNG data is short: ${raw.length} bytes for ${width}×${height}`);
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? px.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels]! : 0, b = up[i]!, c = i >= channels ? up[i - channels]! : 0;
      let v: number;
      switch (filter) {
        case 0: v = src[i]!; break;
        case 1: v = src[i]! + a; break;
        case 2: v = src[i]! + b; break;
        case 3: v = src[i]! + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v = src[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new Error(`PNG row ${y}: unknown filter ${filter}`);
      }
      row[i] = v & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    const s = p * channels;
    const [r, g, b, alpha] = channels === 1 ? [px[s]!, px[s]!, px[s]!, 255]
      : channels === 2 ? [px[s]!, px[s]!, px[s]!, px[s + 1]!]
      : channels === 3 ? [px[s]!, px[s + 1]!, px[s + 2]!, 255]
      : [px[s]!, px[s + 1]!, px[s + 2]!, px[s + 3]!];
    rgba.set([r, g, b, alpha], p * 4);
  }
  return { width, height, rgba };
}

/**
 * The greys of a view's edges: its frame (config.view.stroke in notebooks/lib/show.ts) and Vega's axis
 * domain line, drawn over the frame's bottom and left edges.
 */
const FRAME = [0xcc, 0x88];

/**
 * The plot area: the box spanned by the views' horizontal edges (rows with a long straight run of a
 * frame grey), so that titles, axis labels and legends are outside it. The whole picture when no
 * edge is found (a heatmap's cells cover its frame).
 */
export function plotArea(img: Image): { x0: number; y0: number; x1: number; y1: number } {
  const isFrame = (x: number, y: number) => {
    const o = (y * img.width + x) * 4;
    return FRAME.includes(img.rgba[o]!) && img.rgba[o + 1] === img.rgba[o] && img.rgba[o + 2] === img.rgba[o] && img.rgba[o + 3] === 255;
  };
  const RUN = 40;
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < img.height; y++) {
    let run = 0;
    for (let x = 0; x < img.width; x++) {
      run = isFrame(x, y) ? run + 1 : 0;
      if (run >= RUN) { y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x - run + 1); x1 = Math.max(x1, x); }
    }
  }
  // one edge only (a heatmap covers its frame, the axis line stays): no box to go by
  if (x1 < 0 || y1 - y0 < 10) return { x0: 0, y0: 0, x1: img.width - 1, y1: img.height - 1 };
  return { x0, y0, x1, y1 };
}

/**
 * Coloured pixels (not grey, white or black: max − min channel ≥ 40, opaque enough) inside the plot
 * area. Axes, grid lines, frames and text are grey; every mark the notebooks draw is coloured (bars,
 * lines and points in Vega's palette, heatmap cells in viridis or red–blue), so a chart whose marks all
 * vanished has none.
 */
export function markPixels(img: Image): number {
  const a = plotArea(img);
  let n = 0;
  for (let y = a.y0; y <= a.y1; y++) {
    for (let x = a.x0; x <= a.x1; x++) {
      const o = (y * img.width + x) * 4;
      const r = img.rgba[o]!, g = img.rgba[o + 1]!, b = img.rgba[o + 2]!, alpha = img.rgba[o + 3]!;
      if (alpha >= 128 && Math.max(r, g, b) - Math.min(r, g, b) >= 40) n++;
    }
  }
  return n;
}
