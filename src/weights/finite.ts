/**
 * Non-finite weights: one NaN or Infinity in a checkpoint turns the outputs into NaN, which then print
 * as `null` (dense, ColBERT), empty lexical weights and zero scores: silently wrong.
 *
 * Where to check: scanning all 568M weights of BGE-M3 at load costs 11–22 % of the load itself
 * (measured: 3.8–7.2 s against a 33 s load on a loaded 2-core machine), so the outputs are checked
 * instead, which costs nothing next to the forward pass. Only when an output is not finite are the
 * weights scanned, to name the culprit: one reduction per tensor on the backend (a sum is NaN or
 * ±Infinity as soon as one element is), then a read-back of the tensors whose sum is not finite to
 * count and locate the bad elements (which also tells a real NaN from a sum of huge finite values
 * that overflowed). A NaN the inputs never reach (say, in an unused row of the position table) does
 * not change any output and is not reported.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface NonFiniteTensor {
  readonly name: string;
  /** Elements that are NaN, +Infinity or −Infinity. */
  readonly count: number;
  /** Flat index and value of the first of them. */
  readonly firstIndex: number;
  readonly firstValue: number;
}

export class NonFiniteWeightsError extends Error {
  constructor(readonly source: string, readonly tensors: readonly NonFiniteTensor[]) {
    const t = tensors[0]!;
    const more = tensors.length > 1 ? ` (and ${tensors.length - 1} more tensors: ${tensors.slice(1, 4).map((x) => `'${x.name}'`).join(', ')}${tensors.length > 4 ? ', …' : ''})` : '';
    super(`${source}: tensor '${t.name}' has ${t.count} non-finite values (first: ${t.firstValue} at flat index ${t.firstIndex})${more}; `
      + 'so the outputs are NaN or infinite. The checkpoint is corrupt or was saved after training diverged.');
    this.name = 'NonFiniteWeightsError';
  }
}

/**
 * The (name, tensor) pairs of a parameter tree that mirrors the Hugging Face key tree
 * (`params.encoder.layer[3].attention.self.query.weight` → `encoder.layer.3.attention.self.query.weight`).
 * A tensor stored directly under a module name (`embeddings.word_embeddings`) is that module's `.weight`.
 */
export function namedTensors(tree: unknown, prefix = ''): Array<[string, tf.Tensor]> {
  const out: Array<[string, tf.Tensor]> = [];
  const walk = (node: unknown, path: string): void => {
    if (node instanceof tf.Tensor) {
      const leaf = path.slice(path.lastIndexOf('.') + 1);
      out.push([leaf === 'weight' || leaf === 'bias' ? path : `${path}.weight`, node]);
    } else if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${path}.${i}`));
    } else if (node && typeof node === 'object' && !(node instanceof Map)) {
      // Own enumerable fields only: derived views (getters such as `weightT`) are not weights.
      for (const [k, v] of Object.entries(node)) walk(v, path === '' ? k : `${path}.${k}`);
    }
  };
  walk(tree, prefix);
  return out;
}

/** Scans one tensor's values: how many are non-finite and where the first is. */
async function scan(name: string, t: tf.Tensor): Promise<NonFiniteTensor | null> {
  const data = (await t.data()) as Float32Array;
  let count = 0;
  let firstIndex = -1;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (x - x !== 0) { // NaN and ±Infinity are the only values for which x − x is not 0
      if (count === 0) firstIndex = i;
      count++;
    }
  }
  return count === 0 ? null : { name, count, firstIndex, firstValue: data[firstIndex]! };
}

/** Every tensor holding NaN or ±Infinity, in the order given. */
export async function findNonFinite(tensors: Iterable<[string, tf.Tensor]>): Promise<NonFiniteTensor[]> {
  const bad: NonFiniteTensor[] = [];
  for (const [name, t] of tensors) {
    const sum = tf.tidy(() => tf.sum(t));
    const s = (await sum.data())[0]!;
    sum.dispose();
    if (Number.isFinite(s)) continue;
    const found = await scan(name, t);
    if (found) bad.push(found);
  }
  return bad;
}

/** Throws NonFiniteWeightsError naming `source` and the first tensors with NaN or ±Infinity. */
export async function assertFiniteWeights(source: string, tensors: Iterable<[string, tf.Tensor]>): Promise<void> {
  const bad = await findNonFinite(tensors);
  if (bad.length > 0) throw new NonFiniteWeightsError(source, bad);
}

/** Index of the first NaN or ±Infinity in `a`, or −1. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    if (x - x !== 0) return i;
  }
  return -1;
}

/**
 * Checks a forward pass's outputs (host arrays, by output name). When one holds NaN or ±Infinity, the
 * weights are scanned: a NonFiniteWeightsError names the file (`fileOf` the tensor name) and tensor,
 * otherwise an Error says the activations themselves overflowed.
 */
export async function checkOutputsFinite(
  outputs: Readonly<Record<string, ArrayLike<number> | undefined>>,
  params: unknown,
  fileOf: (tensorName: string) => string,
): Promise<void> {
  for (const [what, values] of Object.entries(outputs)) {
    if (values === undefined || firstNonFinite(values) < 0) continue;
    const bad = await findNonFinite(namedTensors(params));
    if (bad.length > 0) throw new NonFiniteWeightsError(fileOf(bad[0]!.name), bad);
    throw new Error(`the ${what} output has non-finite values although every weight is finite: `
      + 'an activation overflowed float32 (weights far larger than a trained model has), or a hook wrote them');
  }
}

/** The snapshot file a weight comes from: its head's file for `colbert_linear.*` / `sparse_linear.*`, else the encoder's. */
export function weightFile(files: Readonly<Record<string, string>>, tensorName: string): string {
  const head = tensorName.slice(0, tensorName.indexOf('.'));
  return files[head] ?? files.encoder ?? 'the checkpoint';
}
