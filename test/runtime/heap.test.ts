/**
 * The wasm heap guard: a plan that cannot fit is refused with a HeapBudgetError naming what needed
 * the room, before anything is written at address 0; the model keeps working afterwards. Also the
 * per-layer plan for BGE-M3's sizes at 8192 tokens fits in what the weights leave free.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BgeM3 } from '../../src/m3.js';
import { activeWasmBackend } from '../../src/runtime/heap-load.js';
import { canAllocate, ensureHeap, heapStats, HeapBudgetError, WASM_HEAP_MAX } from '../../src/runtime/heap-guard.js';
import { fastPeakBlocks } from '../../src/model/fast/ops.js';
import { parseConfig } from '../../src/config.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases, maxAbsDiff } from '../helpers/reference.js';

const long = loadCases().find((c) => c.id === 'long_3k')!;

describe('wasm heap guard', () => {
  let m3: BgeM3;
  beforeAll(async () => { m3 = await BgeM3.load(checkpointDir('tiny-m3')); });
  afterAll(() => m3.dispose());

  it('knows what fits', () => {
    expect(activeWasmBackend()).not.toBeNull();
    expect(canAllocate([1 << 20, 1 << 20])).toBe(true);
    expect(canAllocate([WASM_HEAP_MAX])).toBe(false);
    expect(() => ensureHeap([3 * 2 ** 30, 3 * 2 ** 30], 'two 3 GiB blocks', 'Try less.'))
      .toThrow(/wasm heap exhausted: two 3 GiB blocks needs about 6144 MiB more.*Try less\./);
    expect(heapStats()!.tensorBytes).toBeGreaterThan(0);
  });

  it('refuses a batch the nearly full heap cannot hold, and the model still works afterwards', async () => {
    const ids = { inputIds: [long.input_ids] };
    const before = await m3.encode(ids, { returnColbert: true });
    // Fill the heap with untouched blocks (no RSS), leaving less than one layer of this input needs.
    const b = activeWasmBackend()!;
    const held: number[] = [];
    for (const size of [256 << 20, 16 << 20, 1 << 20, 64 << 10]) {
      for (let p = b.wasm._malloc(size) >>> 0; p !== 0; p = b.wasm._malloc(size) >>> 0) held.push(p);
    }
    try {
      await expect(m3.encode(ids, { returnColbert: true })).rejects.toThrow(HeapBudgetError);
      await expect(m3.encode(ids)).rejects.toThrow(/wasm heap exhausted: (the embeddings|encoder layer 0) of 1×\d+ tokens/);
    } finally {
      for (const p of held) b.wasm._free(p);
    }
    const after = await m3.encode(ids, { returnColbert: true });
    expect(maxAbsDiff(after.denseVecs![0]!, before.denseVecs![0]!)).toBe(0);
    expect(maxAbsDiff(after.colbertVecs![0]!.data, before.colbertVecs![0]!.data)).toBe(0);
  });

  it("one layer of BGE-M3 at 8192 tokens plans well under the ~1.9 GiB its float32 weights leave free", () => {
    const c = parseConfig({
      model_type: 'xlm-roberta', vocab_size: 250002, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16,
      intermediate_size: 4096, max_position_embeddings: 8194, type_vocab_size: 1, layer_norm_eps: 1e-5, pad_token_id: 1,
    });
    const plan = fastPeakBlocks(1, 8192, c, {}, false).reduce((a, x) => a + x, 0);
    expect(plan).toBeLessThan(2 ** 30);
    const weights = 4 * (250002 + 8194 + 1) * 1024 + 24 * 4 * (12 * 1024 * 1024 + 13 * 1024);
    expect(weights + plan).toBeLessThan(WASM_HEAP_MAX);
  });
});
