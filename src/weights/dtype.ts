/** Conversions of raw little-endian tensor bytes to float32, and of float32 values to IEEE half bits. */
import { DTYPE_SIZE, type DType } from './types.js';

const F16_TABLE = (() => {
  // Exact float32 value of every IEEE half bit pattern (65536 entries, 256 kB).
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24; // subnormal (and signed zero)
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return t;
})();

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('bge-m3-tfjs needs a little-endian host');
}

/** Copies `bytes` (little-endian `dtype`) into a new Float32Array. Returns null for non-float dtypes. */
export function toFloat32(bytes: Uint8Array, dtype: DType): Float32Array | null {
  const n = bytes.byteLength / DTYPE_SIZE[dtype];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      new Uint8Array(out.buffer).set(bytes); // the host is little-endian (checked below)
      return out;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = F16_TABLE[dv.getUint16(i * 2, true)]!;
      return out;
    case 'BF16': {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = dv.getUint16(i * 2, true) << 16;
      return out;
    }
    default:
      return null;
  }
}

/**
 * As `toFloat32`, for bytes a reader has just read into a buffer of their own (nothing else holds
 * them): F32 is wrapped, not copied, so the host path holds one copy of a tensor, not two (a second
 * GB and seconds of copying for a 1 GB embedding matrix).
 */
export function ownedToFloat32(bytes: Uint8Array, dtype: DType): Float32Array | null {
  if (dtype === 'F32' && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) {
    return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
  }
  return toFloat32(bytes, dtype);
}

/** One float32 and its bits: `toFloat16Bits` runs per element over whole tensors, so it allocates nothing. */
const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/** float32 -> IEEE half bits, round to nearest even (as torch's .half()). */
export function toFloat16Bits(x: number): number {
  F32_SCRATCH[0] = x;
  const u = U32_SCRATCH[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) { // subnormal half (or zero)
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && (half & 1)) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && (half & 1)) ? 1 : 0));
}
