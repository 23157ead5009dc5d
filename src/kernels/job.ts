/**
 * The job struct the kernel (kernel.wat and its parts) reads, declared once in job.json (byte offsets of each op's fields; the
 * build substitutes the same names into the WAT) and written here by name. One struct per kernel
 * context: its fields, then per thread a scratch tile and a table of constants.
 */
import layout from './job.json' with { type: 'json' };

/** The fields of one job struct (job.json), by name; those not given are written as 0. */
export type JobFields<Op extends keyof typeof layout> = { [F in keyof (typeof layout)[Op]]?: number };
export type JobOp = keyof typeof layout.ops;

/** Threads the struct has scratch for: the most a kernel pool runs. */
export const MAX_THREADS = layout.bytes.threads;

/** Bytes of the whole struct: the fields, then per thread (up to 8) a scratch tile and a table of constants. */
export const JOB_BYTES = layout.bytes.fields + layout.bytes.threads * (layout.bytes.tile + layout.bytes.constants);

/** Fields written as float32; every other field is an int32 (an address, a size, a flag). */
const F32 = new Set(['gemm.scale', 'rows.eps', 'attention.scale']);

/**
 * Clears the job's fields and writes `fields` of `struct` (the op's own fields, by name) and the op;
 * the shared counters (abort, next work item) start at 0.
 */
export function writeJob<S extends 'gemm' | 'rows' | 'attention'>(
  memory: ArrayBuffer, job: number, op: JobOp, struct: S, fields: JobFields<S>,
): void {
  const bytes = layout.bytes.fields;
  new Uint8Array(memory, job, bytes).fill(0);
  const i32 = new Int32Array(memory, job, bytes / 4); // a fresh view: the heap may have grown
  const f32 = new Float32Array(memory, job, bytes / 4);
  const offsets = layout[struct] as Record<string, number>;
  for (const [name, value] of Object.entries(fields as Record<string, number | undefined>)) {
    if (value === undefined) continue;
    const at = offsets[name]! / 4;
    if (F32.has(`${struct}.${name}`)) f32[at] = value;
    else i32[at] = value;
  }
  i32[layout.shared.op / 4] = layout.ops[op];
}
