/**
 * `bge-m3 encode --model DIR (--input FILE.jsonl | - | TEXT ...) [--out FILE.jsonl [--resume]] [--max-length N]
 *   [--batch-size N] [--dense] [--sparse] [--colbert] [--backend NAME] [--force]`
 * One JSON line per input, in input order: {"id", "input_ids", "dense", "lexical_weights", "colbert"}
 * (only the requested outputs; no output flag means all three).
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BgeM3, EncodeOutput } from '../m3.js';
import { defineCommand } from './command.js';
import { CliError, intFlag, lengthFlag, readJsonl, renamedFlag, type CliIO, type InputRecord } from './io.js';
import { cannotWrite, openFile, partPath, PartFile, readRange, scanPart, type OpenFile } from './part-file.js';
import { createProgress } from './progress.js';

export const USAGE = `Usage: bge-m3 encode --model DIR (--input FILE.jsonl | TEXT ...) [--out FILE.jsonl [--resume]]
                    [--max-length N] [--batch-size N] [--dense] [--sparse] [--colbert] [--backend NAME] [--force]

Input lines are {"id": ..., "text": "..."}, from --input FILE, or from standard input with --input -.
Writes one JSON line per input, in input order, to --out (refused if it exists, unless --force) or stdout:
  {"id", "input_ids": [...], "dense": [...], "lexical_weights": {"<token id>": w}, "colbert": [[...], ...]}
Only the requested outputs are written; none of --dense/--sparse/--colbert means all three.
--max-length defaults to 8192, or the model's own limit when that is smaller.

--out FILE is written as FILE.part and renamed to FILE when complete. If the run stops early (Ctrl-C,
a full disk, an error), FILE.part keeps the lines written so far: rerun the same command with --resume
to continue it (the result is the same as an uninterrupted run), or with --force to start over.
(--output is the old name of --out: still accepted, with a warning.)
`;

/**
 * Texts encoded per chunk (at least one batch). Lines are written chunk by chunk, so memory stays
 * bounded; a Ctrl-C drops the unfinished chunk. Resuming restarts on the same chunk boundaries, so every
 * batch holds the same texts as in an uninterrupted run and the output is byte for byte the same.
 */
const CHUNK = 64;

/** `encode`'s streams, and (for tests) how the output file is opened. */
export interface EncodeIO extends CliIO {
  openFile?: OpenFile;
}

/** The JSON line of one text. */
export function outputLine(id: unknown, i: number, out: EncodeOutput): string {
  const rec: Record<string, unknown> = { id, input_ids: out.inputIds[i] };
  if (out.denseVecs) rec.dense = Array.from(out.denseVecs[i]!);
  if (out.lexicalWeights) rec.lexical_weights = out.lexicalWeights[i];
  if (out.colbertVecs) {
    const c = out.colbertVecs[i]!;
    rec.colbert = Array.from({ length: c.rows }, (_, r) => Array.from(c.data.subarray(r * c.dim, (r + 1) * c.dim)));
  }
  return JSON.stringify(rec);
}

interface Want {
  returnDense: boolean;
  returnSparse: boolean;
  returnColbert: boolean;
}

/** Encodes records [from, to) into their output lines. */
type EncodeChunk = (from: number, to: number, onBatch?: (done: number) => Promise<void> | void) => Promise<string>;

/** Refuses, before anything is loaded, an --out that would replace a file or ignore a partial one. */
function checkTarget(target: string, force: boolean, resume: boolean): void {
  const part = partPath(target);
  if (!existsSync(dirname(target) || '.')) throw new CliError(`${target}: its directory does not exist`);
  if (existsSync(target) && !force) {
    throw new CliError(resume && !existsSync(part) ? `${target} exists (a finished run): nothing to resume` : `${target} exists; pass --force to replace it`);
  }
  if (existsSync(part) && !resume && !force) {
    throw new CliError(`${part} holds the lines of an unfinished run: pass --resume to continue it, or --force to start over`);
  }
}

/**
 * Checks an unfinished run's part file against this command and returns the part file to continue.
 * Every complete line must be this input's record (same id, same order) with this command's fields
 * and token ids; a line cut off mid-write is dropped. The run restarts at a chunk boundary, and the
 * last chunk kept is recomputed and must match byte for byte (same model, batch size, backend).
 */
async function resumePart(
  target: string, records: InputRecord[], m3: BgeM3, want: Want, maxLength: number,
  encodeChunk: EncodeChunk, chunk: number, opener: OpenFile,
): Promise<PartFile> {
  const part = partPath(target);
  const keys = ['id', 'input_ids', ...(want.returnDense ? ['dense'] : []), ...(want.returnSparse ? ['lexical_weights'] : []),
    ...(want.returnColbert ? ['colbert'] : [])].join(',');
  const refuse = (line: number, why: string) => new CliError(`cannot resume: ${part}:${line}: ${why}; pass --force instead of --resume to start over`);
  const { ends } = await scanPart(part, (i, line) => {
    if (i >= records.length) throw refuse(i + 1, `more lines than the ${records.length} inputs`);
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line);
    } catch {
      throw refuse(i + 1, 'not a complete JSON line');
    }
    const got = JSON.stringify(obj.id);
    const want = JSON.stringify(records[i]!.id);
    if (got !== want) throw refuse(i + 1, `id ${got}, but input ${i + 1} has id ${want} (a different input file?)`);
    if (Object.keys(obj).join(',') !== keys) throw refuse(i + 1, `fields ${Object.keys(obj).join(',')}, but this command writes ${keys} (different --dense/--sparse/--colbert?)`);
    if (JSON.stringify(obj.input_ids) !== JSON.stringify(m3.tokenize([records[i]!.text], maxLength)[0])) {
      throw refuse(i + 1, 'input_ids differ from this command\'s tokenization (a different --max-length or model?)');
    }
  });
  const n = records.length;
  const complete = ends.length;
  const kept = complete === n ? n : complete - (complete % chunk);
  if (kept > 0) {
    const from = kept === n ? Math.floor((n - 1) / chunk) * chunk : kept - chunk;
    const fresh = (await encodeChunk(from, kept)).split('\n');
    const stored = (await readRange(part, from > 0 ? ends[from - 1]! : 0, ends[kept - 1]!)).split('\n');
    const bad = fresh.findIndex((l, i) => l !== stored[i]);
    if (bad >= 0) {
      throw refuse(from + bad + 1, 'differs from what this command computes for that input (was it written with another --model, --batch-size or --backend?)');
    }
  }
  return PartFile.continue(target, kept, kept > 0 ? ends[kept - 1]! : 0, opener);
}

/** Thrown from the progress callback to stop `encode` between batches after a Ctrl-C. */
class Interrupted extends Error {}

/**
 * Writes every line to the part file, chunk by chunk, and renames it to the target. Ctrl-C stops after
 * the current batch (a second Ctrl-C at once) and exits 130; a failure keeps the lines written so far.
 */
async function writeOutput(out: PartFile, n: number, chunk: number, encodeChunk: EncodeChunk, force: boolean, stderr: NodeJS.WritableStream): Promise<number> {
  const resumeHint = () => `${out.lines} of ${n} lines are in ${out.part}: rerun the same command with --resume to continue`;
  let stop = false;
  const onSigint = () => {
    if (stop) {
      stderr.write(`bge-m3 encode: stopped at once; ${resumeHint()}\n`);
      process.exit(130);
    }
    stop = true;
    stderr.write('\nbge-m3 encode: stopping after the current batch (Ctrl-C again to stop at once)\n');
  };
  process.on('SIGINT', onSigint);
  const bar = createProgress('encode', n, 'items', { stream: stderr, start: out.lines });
  try {
    for (let start = out.lines; start < n && !stop; start += chunk) {
      const end = Math.min(start + chunk, n);
      const text = await encodeChunk(start, end, async (done) => {
        bar.update(start + done);
        await new Promise((resolve) => setImmediate(resolve)); // lets a pending SIGINT be delivered
        if (stop) throw new Interrupted();
      });
      try {
        await out.append(text, end - start);
      } catch (e) {
        throw cannotWrite(out.part, e);
      }
    }
    bar.stop();
    if (out.lines < n) throw new Interrupted();
    try {
      await out.finish(force);
    } catch (e) {
      throw e instanceof CliError ? e : cannotWrite(out.part, e);
    }
    return 0;
  } catch (e) {
    bar.stop();
    const kept = await out.abandon();
    if (e instanceof Interrupted) {
      stderr.write(`bge-m3 encode: interrupted; ${kept ? resumeHint() : 'no line was complete, nothing was kept'}\n`);
      return 130;
    }
    if (!kept) throw e;
    const message = e instanceof Error ? e.message : String(e);
    throw new CliError(`${message}\n${resumeHint()} (or --force to start over)`);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export const run = defineCommand({
  name: 'encode', usage: USAGE, positionals: true,
  options: {
    model: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' }, output: { type: 'string' }, resume: { type: 'boolean' },
    'max-length': { type: 'string' }, 'batch-size': { type: 'string' },
    dense: { type: 'boolean' }, sparse: { type: 'boolean' }, colbert: { type: 'boolean' },
    backend: { type: 'string' }, force: { type: 'boolean' },
  },
}, async ({ values, positionals, stdout, stderr, warn, modelDir, load }, io: EncodeIO) => {
  const dir = modelDir();
  if (values.input !== undefined && positionals.length > 0) throw new CliError('give --input FILE or TEXT arguments, not both', true);
  if (values.input === undefined && positionals.length === 0) throw new CliError('nothing to encode: give --input FILE.jsonl (- for standard input) or TEXT arguments', true);
  const target = renamedFlag('out', values.out, 'output', values.output, warn);
  if (values.resume && target === undefined) throw new CliError('--resume continues an --out FILE; give --out', true);
  const maxLengthFlag = intFlag(values['max-length'], 'max-length', 2);
  const batchSize = intFlag(values['batch-size'], 'batch-size', 1);
  const none = !values.dense && !values.sparse && !values.colbert;
  const want = { returnDense: none || !!values.dense, returnSparse: none || !!values.sparse, returnColbert: none || !!values.colbert };
  const force = !!values.force;
  // Nothing is opened for writing before the arguments are checked and the model has loaded.
  if (target !== undefined) checkTarget(target, force, !!values.resume);

  const records: InputRecord[] = values.input !== undefined ? await readJsonl(values.input, warn) : positionals.map((text, i) => ({ id: i, text }));
  const m3 = await load(dir);
  try {
    const maxLength = lengthFlag(maxLengthFlag, 'max-length', m3, m3.defaultMaxLength);
    const chunk = Math.max(CHUNK, batchSize ?? 0);
    const encodeChunk: EncodeChunk = async (from, to, onBatch) => {
      const part = records.slice(from, to);
      const result = await m3.encode(part.map((r) => r.text), { ...want, maxLength, batchSize, onProgress: onBatch });
      return part.map((r, i) => `${outputLine(r.id, i, result)}\n`).join('');
    };

    if (target === undefined) {
      const bar = createProgress('encode', records.length, 'items', { stream: stderr });
      try {
        for (let start = 0; start < records.length; start += chunk) {
          const text = await encodeChunk(start, Math.min(start + chunk, records.length), (done) => bar.update(start + done));
          if (!stdout.write(text)) await new Promise((resolve) => stdout.once('drain', resolve));
        }
      } finally {
        bar.stop();
      }
      return 0;
    }

    const opener = io.openFile ?? openFile;
    let out: PartFile;
    if (values.resume && existsSync(partPath(target))) {
      out = await resumePart(target, records, m3, want, maxLength, encodeChunk, chunk, opener);
      stderr.write(`bge-m3 encode: resuming ${partPath(target)} after line ${out.lines} of ${records.length}\n`);
    } else {
      if (values.resume) stderr.write(`bge-m3 encode: nothing to resume (no ${partPath(target)}); starting from the first line\n`);
      out = await PartFile.create(target, opener);
    }
    return await writeOutput(out, records.length, chunk, encodeChunk, force, stderr);
  } finally {
    m3.dispose();
  }
});
