/**
 * The one map between the weight tree's tensor names and a BGE-M3 snapshot's files.
 *
 * The tree (model/params.ts `describeWeights`) is stored in three parts: the ColBERT and sparse heads
 * each in a file of their own, named after the head's module and holding `weight` / `bias` without the
 * module prefix (`colbert_linear.bias` is key `bias` of `colbert_linear.pt`), and every other tensor,
 * under its full name, in the encoder's file. Each part exists as safetensors or in PyTorch's
 * `torch.save` format; a loader prefers the safetensors file.
 *
 * Loader, converter, hub download, random checkpoints, the lab's head folders and error messages all
 * take their file names from here (test/weights/checkpoint-files.test.ts fails on a second copy).
 */

/** The heads stored in a file of their own: their module names in the weight tree, and their files' stems. */
export const HEAD_PARTS = ['colbert_linear', 'sparse_linear'] as const;
export type HeadPart = (typeof HEAD_PARTS)[number];
export type CheckpointPart = 'encoder' | HeadPart;
export const CHECKPOINT_PARTS: readonly CheckpointPart[] = ['encoder', ...HEAD_PARTS];

/** A part's two files and the top folder its `torch.save` archive uses. */
export interface PartFiles {
  readonly safetensors: string;
  readonly torch: string;
  readonly archive: string;
}

/** The files of one part: `model.safetensors` / `pytorch_model.bin` for the encoder, `<head>.safetensors` / `<head>.pt` for a head. */
export function partFiles(part: CheckpointPart): PartFiles {
  return part === 'encoder'
    ? { safetensors: 'model.safetensors', torch: 'pytorch_model.bin', archive: 'pytorch_model' }
    : { safetensors: `${part}.safetensors`, torch: `${part}.pt`, archive: part };
}

/** A part's files in the order a loader takes them (the first one present). */
export function partCandidates(part: CheckpointPart): [string, string] {
  const f = partFiles(part);
  return [f.safetensors, f.torch];
}

/** The part a full tensor name is stored in, and its key in that part's file. */
export function locateTensor(name: string): { part: CheckpointPart; key: string } {
  for (const head of HEAD_PARTS) {
    if (name.startsWith(`${head}.`)) return { part: head, key: name.slice(head.length + 1) };
  }
  return { part: 'encoder', key: name };
}

/** The full name of key `key` of a part's file (the inverse of `locateTensor`). */
export function tensorName(part: CheckpointPart, key: string): string {
  return part === 'encoder' ? key : `${part}.${key}`;
}

/** Items named by full tensor name, split by the part that stores them, each renamed to its key there (order kept). */
export function splitByPart<T extends { name: string }>(items: Iterable<T>): Record<CheckpointPart, T[]> {
  const out = Object.fromEntries(CHECKPOINT_PARTS.map((p) => [p, [] as T[]])) as Record<CheckpointPart, T[]>;
  for (const item of items) {
    const { part, key } = locateTensor(item.name);
    out[part].push({ ...item, name: key });
  }
  return out;
}
