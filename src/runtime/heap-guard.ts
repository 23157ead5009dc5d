/**
 * A guard for the wasm heap.
 *
 * The wasm heap is a 32-bit address space: at most 4 GiB, weights included. When it is full,
 * `malloc` returns 0 and tfjs-backend-wasm does not check: the tensor is "allocated" at address 0,
 * its values overwrite whatever lives there and the module crashes a little later, or worse, computes
 * garbage. So before an allocation that may not fit we ask the allocator itself: `ensureHeap` mallocs
 * the planned sizes (one block each, as the ops will), frees them, and throws a `HeapBudgetError`
 * naming what needed the room when any of them fails. Probing costs a few malloc/free calls and
 * touches no memory. On other backends it does nothing.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeWasmBackend, heapU8 } from './heap-load.js';

/** 4 GiB − 64 KiB: the wasm32 memory limit the Emscripten build was made with. */
export const WASM_HEAP_MAX = 4294901760;

export class HeapBudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HeapBudgetError';
  }
}

export interface HeapStats {
  /** Current size of the wasm memory (it only grows). */
  heapBytes: number;
  /** Bytes held by live tensors (tf.memory().numBytes): the weights plus activations. */
  tensorBytes: number;
  maxBytes: number;
}

/** Heap figures on the wasm backend, null elsewhere. */
export function heapStats(): HeapStats | null {
  const b = activeWasmBackend();
  if (!b) return null;
  return { heapBytes: heapU8(b).length, tensorBytes: tf.memory().numBytes, maxBytes: WASM_HEAP_MAX };
}

const MiB = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;

/**
 * True when the heap can hold blocks of all `sizes` (bytes) at once. Always true off wasm.
 */
export function canAllocate(sizes: readonly number[]): boolean {
  const b = activeWasmBackend();
  if (!b) return true;
  const total = sizes.reduce((a, s) => a + s, 0);
  if (total >= WASM_HEAP_MAX) return false;
  const got: number[] = [];
  try {
    for (const s of sizes) {
      if (s <= 0) continue;
      const p = b.wasm._malloc(s) >>> 0;
      if (p === 0) return false;
      got.push(p);
    }
    return true;
  } finally {
    for (const p of got) b.wasm._free(p);
  }
}

/**
 * Throws a HeapBudgetError unless the heap can hold blocks of all `sizes` at once. `what` says what
 * needs them; `hint` what the caller can change.
 */
export function ensureHeap(sizes: readonly number[], what: string, hint = ''): void {
  if (canAllocate(sizes)) return;
  const s = heapStats()!;
  const need = sizes.reduce((a, x) => a + x, 0);
  throw new HeapBudgetError(
    `wasm heap exhausted: ${what} needs about ${MiB(need)} more, but the 4 GiB wasm heap cannot provide it ` +
    `(tensors in use: ${MiB(s.tensorBytes)}, heap size ${MiB(s.heapBytes)}).${hint ? ` ${hint}` : ''}`,
  );
}
