/**
 * The peak-memory plan: how many bytes a layer may hold at once, so that a batch the wasm heap cannot
 * hold is refused with a clear error before it starts (a full heap would otherwise fail silently; see
 * runtime/heap-guard.ts). Estimates on the generous side, as lists of blocks the heap must hold together.
 */
import type { XLMRobertaConfig } from '../../config.js';
import { layerName } from '../../hooks/names.js';
import type { HookRunner } from '../../hooks/runner.js';
import { kernelActive } from '../../kernels/index.js';
import { attentionGroups, feedForwardChunk, queryBlockRows, type FastOptions } from './attention.js';

const blocks = (n: number, bytes: number): number[] => new Array<number>(n).fill(bytes);

/** The embeddings of a [B, T] batch: the gathered rows, their sum and the LayerNorm temporaries. */
export function embeddingsPeakBlocks(B: number, T: number, c: XLMRobertaConfig): number[] {
  return blocks(6, 4 * B * T * c.hidden_size);
}

/**
 * One fast layer (fast/layer.ts) on a [B, T] batch. Chunked (no hook inside the layer): the input,
 * the transposed input chunks and XNNPACK's packed copies of them (with the kernel: q, k, v and the
 * attention job's scratch), the context pieces and the output (a few [B·T, H]), one block of one
 * head's scores and probabilities, and one chunk's feed-forward temporaries. Whole (hooks inside
 * it): the tensors a layer's tidy keeps, with the [B·T, I] intermediate and GELU output.
 */
export function layerPeakBlocks(B: number, T: number, c: XLMRobertaConfig, opts: FastOptions = {}, whole = false): number[] {
  const N = B * T;
  const W = attentionGroups(B, T, opts)[0]!.count * T; // tokens of the largest attention unit
  const n = queryBlockRows(W, opts);
  const scores = blocks(2, 4 * n * W);
  if (whole) return [...blocks(3, 4 * N * c.intermediate_size), ...blocks(10, 4 * N * c.hidden_size), ...scores];
  const kernel = kernelActive();
  const chunk = Math.min(N, feedForwardChunk(opts));
  // With the kernel, q, k, v and the context are whole [B·T, H] tensors, plus the job's scratch (a
  // few MB; one more block covers it)
  return [...blocks(kernel ? 7 : 6, 4 * N * c.hidden_size), ...scores, ...blocks(3, 4 * chunk * c.intermediate_size)];
}

/**
 * One textbook layer (../layer.ts): everything its tidy keeps, every head's scores at once (q·kᵀ, its
 * scaled and masked copies and the probabilities: four [B, heads, T, T]).
 */
export function referenceLayerPeakBlocks(B: number, T: number, c: XLMRobertaConfig): number[] {
  const N = B * T;
  return [...blocks(3, 4 * N * c.intermediate_size), ...blocks(10, 4 * N * c.hidden_size), ...blocks(4, 4 * B * c.num_attention_heads * T * T)];
}

/** True when fast layer i cannot run chunked: a hook inside the layer after its attention. */
export function wholeLayer(i: number, hooks: HookRunner): boolean {
  return hooks.wants(layerName(i, 'attention.output.hook_out')) || hooks.wants(layerName(i, 'intermediate.hook_out'));
}
