// Compiled (not run) by hooks.test.ts: each @ts-expect-error must be an error, or tsc fails.
import type { ActivationName } from '../../src/hooks/names.js';

export const ok: ActivationName[] = [
  'embeddings.hook_out',
  'encoder.layer.3.attention.self.hook_probs',
  'encoder.layer.23.intermediate.hook_out',
  'sparse_linear.hook_out',
  'colbert_head.hook_out',
];
// @ts-expect-error: misspelt site
export const bad1: ActivationName = 'encoder.layer.3.attention.self.hook_prob';
// @ts-expect-error: misspelt module
export const bad2: ActivationName = 'embedding.hook_out';
// @ts-expect-error: missing layer index
export const bad3: ActivationName = 'encoder.layer.hook_out';
