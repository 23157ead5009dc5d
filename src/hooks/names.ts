/**
 * Activation names: `<hf_module_path>.hook_<site>`. The module path is the prefix of the weights that
 * produce the activation, so a name read without its site names the weights, and the same string keys
 * the reference tensors in the fixtures. Template-literal types make a misspelt name a compile error.
 */

/** Sites inside one encoder layer, relative to `encoder.layer.<i>.`. */
export const LAYER_SITES = [
  'attention.self.hook_q', // [B, heads, T, d] x·Wqᵀ + bq, before the 1/sqrt(d) scaling
  'attention.self.hook_k', // [B, heads, T, d]
  'attention.self.hook_v', // [B, heads, T, d]
  'attention.self.hook_scores', // [B, heads, T, T] q·kᵀ/sqrt(d), padded keys −inf, before softmax
  'attention.self.hook_probs', // [B, heads, T, T] softmax over keys
  'attention.self.hook_out', // [B, T, H] context, heads merged, before attention.output.dense
  'attention.output.hook_out', // [B, T, H] LayerNorm(x + dense(context))
  'intermediate.hook_out', // [B, T, I] after GELU
  'hook_out', // [B, T, H] layer output
] as const;
export type LayerSite = (typeof LAYER_SITES)[number];

/** Sites outside the layers, in the order the forward reaches them. */
export const MODEL_SITES = [
  'embeddings.hook_out', // [B, T, H]
  'dense_head.hook_out', // [B, H] normalised CLS
  'sparse_linear.hook_out', // [B, T, 1] before ReLU
  'sparse_head.hook_out', // [B, T] per-token weights after ReLU
  'colbert_linear.hook_out', // [B, T-1, C] before masking and normalising
  'colbert_head.hook_out', // [B, T-1, C] masked and normalised
] as const;
export type ModelSite = (typeof MODEL_SITES)[number];

export type LayerActivationName = `encoder.layer.${number}.${LayerSite}`;
export type ActivationName = ModelSite | LayerActivationName;

/** Every activation name of a model with `layers` encoder layers, in forward order. */
export function allActivationNames(layers: number): ActivationName[] {
  const names: ActivationName[] = ['embeddings.hook_out'];
  for (let i = 0; i < layers; i++) for (const s of LAYER_SITES) names.push(`encoder.layer.${i}.${s}`);
  names.push(...MODEL_SITES.slice(1));
  return names;
}

export const layerName = (i: number, site: LayerSite): LayerActivationName => `encoder.layer.${i}.${site}`;

/** Levenshtein distance, for suggesting the closest valid names. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** Throws when `name` is not an activation of this model, listing the closest valid names. */
export function checkActivationName(name: string, layers: number): asserts name is ActivationName {
  const all = allActivationNames(layers);
  if ((all as string[]).includes(name)) return;
  const close = all
    .map((n) => [n, distance(name, n)] as const)
    .sort((x, y) => x[1] - y[1])
    .slice(0, 3)
    .map(([n]) => n);
  throw new Error(`unknown activation name '${name}' (this model has ${layers} layers); did you mean ${close.map((c) => `'${c}'`).join(', ')}?`);
}
