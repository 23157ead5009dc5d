/**
 * The tests' torch.save writer: the project's own writer (src/weights/torch-writer.ts), plus byte
 * helpers for building storages by hand.
 */
export * from '../../src/weights/torch-writer.js';

// ---------------------------------------------------------------------------------------------
// Bytes helpers

export const f32Bytes = (v: ArrayLike<number>): Uint8Array => new Uint8Array(Float32Array.from(v).buffer);
export const f64Bytes = (v: ArrayLike<number>): Uint8Array => new Uint8Array(Float64Array.from(v).buffer);
export const u16Bytes = (bits: ArrayLike<number>): Uint8Array => new Uint8Array(Uint16Array.from(bits).buffer);
