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
import { locateTensor, type CheckpointPart } from './checkpoint-files.js';

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

/** Every tensor holding NaN or ±Infinity, in the order given (`findHeadFaults` with no size limit). */
export async function findNonFinite(tensors: Iterable<[string, tf.Tensor]>): Promise<NonFiniteTensor[]> {
  return (await findHeadFaults(tensors, Infinity)).map(({ name, count, firstIndex, firstValue }) => ({ name, count, firstIndex, firstValue }));
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

/** The snapshot file a weight comes from (checkpoint-files.ts `locateTensor`). */
export function weightFile(files: Readonly<Partial<Record<CheckpointPart, string>>>, tensorName: string): string {
  return files[locateTensor(tensorName).part] ?? 'the checkpoint';
}

// ---------------------------------------------------------------------------------------------
// Sparse heads: small enough to scan whole at load, and the place where a ReLU hides a NaN.

/**
 * The largest |value| a sparse head's weight may hold. BGE-M3's own `sparse_linear` weights are
 * below 1 and the lab's heads start at most at 1 (splade's identity transform); Adam moves a weight
 * by about the learning rate per step, so reaching 1e6 takes a million steps at lr 1. A head beyond
 * it comes from a run that diverged: its token weights are ~1e6·|h|·H and a query·document score
 * (a sum of products of two of them) loses all meaning long before float32 overflows to Infinity,
 * where Infinity − Infinity gives NaN and the ReLU turns that NaN into a silent 0.
 */
export const MAX_HEAD_WEIGHT = 1e6;

/** A head tensor's fault: its non-finite values, or else its values beyond `MAX_HEAD_WEIGHT`. */
export interface HeadTensorFault {
  readonly name: string;
  readonly kind: 'non-finite' | 'too large';
  readonly count: number;
  /** Flat index and value of the first of them. */
  readonly firstIndex: number;
  readonly firstValue: number;
}

/** The fault of one tensor's values (a host array), or null when every value is finite and within ±`limit`. */
export function headValuesFault(name: string, data: ArrayLike<number>, limit = MAX_HEAD_WEIGHT): HeadTensorFault | null {
  let nonFinite = 0, large = 0, firstNonFinite = -1, firstLarge = -1;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (x - x !== 0) {
      if (nonFinite++ === 0) firstNonFinite = i;
    } else if (x > limit || x < -limit) {
      if (large++ === 0) firstLarge = i;
    }
  }
  if (nonFinite > 0) return { name, kind: 'non-finite', count: nonFinite, firstIndex: firstNonFinite, firstValue: data[firstNonFinite]! };
  if (large > 0) return { name, kind: 'too large', count: large, firstIndex: firstLarge, firstValue: data[firstLarge]! };
  return null;
}

/** "tensor 'x' has 3 non-finite values (first: NaN at flat index 4)" and the like. */
export function describeHeadFault(f: HeadTensorFault): string {
  const what = f.kind === 'non-finite' ? 'non-finite values' : `values beyond ±${MAX_HEAD_WEIGHT.toExponential()}, far larger than any trained head's`;
  return `tensor '${f.name}' has ${f.count} ${what} (first: ${f.firstValue} at flat index ${f.firstIndex})`;
}

/**
 * The faults of a head's tensors (see `headValuesFault`), in the order given. One reduction per
 * tensor on the backend (Σ|x| is NaN or Infinity when one element is, max|x| finds large ones; a
 * NaN-swallowing max is covered by the sum), then a host scan of the suspicious ones only.
 */
export async function findHeadFaults(tensors: Iterable<[string, tf.Tensor]>, limit = MAX_HEAD_WEIGHT): Promise<HeadTensorFault[]> {
  const faults: HeadTensorFault[] = [];
  for (const [name, t] of tensors) {
    if (t.size === 0) continue;
    const probe = tf.tidy(() => { const a = tf.abs(t); return tf.stack([tf.sum(a), tf.max(a)]); });
    const [sum, max] = await probe.data();
    probe.dispose();
    if (Number.isFinite(sum) && Number.isFinite(max) && max! <= limit) continue;
    const f = headValuesFault(name, (await t.data()) as Float32Array, limit);
    if (f) faults.push(f);
  }
  return faults;
}

/** A sparse head whose weights are non-finite or absurdly large: naming the file and the tensor. */
export class HeadWeightsError extends Error {
  constructor(readonly source: string, readonly faults: readonly HeadTensorFault[]) {
    const more = faults.length > 1 ? ` (and ${faults.slice(1).map((f) => `'${f.name}'`).join(', ')})` : '';
    super(`${source}: ${describeHeadFault(faults[0]!)}${more}; this sparse head is unusable (corrupt, or saved after training diverged)`);
    this.name = 'HeadWeightsError';
  }
}

/** Throws HeadWeightsError naming `source` when a head tensor is non-finite or beyond ±`MAX_HEAD_WEIGHT`. */
export async function assertHeadWeights(source: string, tensors: Iterable<[string, tf.Tensor]>): Promise<void> {
  const faults = await findHeadFaults(tensors);
  if (faults.length > 0) throw new HeadWeightsError(source, faults);
}
