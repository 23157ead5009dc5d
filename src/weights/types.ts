/**
 * The common view of a weight file: a set of named tensors, read lazily one at a time.
 * Both `safetensors` and PyTorch (`torch.save` zip) checkpoints implement it.
 */

/** safetensors dtype names; PyTorch storages map onto the same names. */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** Raw little-endian bytes of one tensor, contiguous, row-major. */
export interface RawTensor extends TensorInfo {
  readonly bytes: Uint8Array;
}

/** A float32 tensor in host memory (row-major). */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface TensorSource {
  /** File the tensors come from (named in every error). */
  readonly path: string;
  readonly format: 'safetensors' | 'pytorch';
  /** Tensor names in file order. */
  keys(): string[];
  has(name: string): boolean;
  /** Throws an Error naming the file and tensor when absent. */
  info(name: string): TensorInfo;
  /** Contiguous raw bytes (strided PyTorch views are made contiguous). */
  readRaw(name: string): Promise<RawTensor>;
  /** The tensor as float32 (F16/BF16/F64 converted; integer dtypes refused). */
  readFloat32(name: string): Promise<HostTensor>;
  /**
   * Why `readInto` cannot read tensor `name` (a strided view, a big-endian archive), or null when it
   * can: the tensor's bytes lie in the file as they lie in memory, one contiguous little-endian run.
   */
  whyNotInPlace(name: string): string | null;
  /**
   * Reads bytes [from, from + bytes) of tensor `name`'s data, as stored (no conversion), into the view
   * `into()` returns (asked again before each chunk: it may be a view of memory that can move, such
   * as a wasm heap). Only for a tensor `whyNotInPlace` accepts: a positional read, no host copy.
   */
  readInto(name: string, from: number, bytes: number, into: () => Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class WeightFileError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'WeightFileError';
  }
}
