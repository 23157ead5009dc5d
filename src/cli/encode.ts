/**
 * `bge-m3 encode --model DIR (--input FILE.jsonl | TEXT ...) [--output FILE.jsonl] [--max-length N]
 *   [--batch-size N] [--dense] [--sparse] [--colbert] [--backend NAME] [--force]`
 * One JSON line per input, in input order: {"id", "input_ids", "dense", "lexical_weights", "colbert"}
 * (only the requested outputs; no output flag means all three).
 */
import { BgeM3, type EncodeOutput } from '../m3.js';
import { backendFlag, CliError, intFlag, openOutput, parseCli, readJsonl, runCommand, type CliIO, type InputRecord } from './io.js';
import { createProgress } from './progress.js';

export const USAGE = `Usage: bge-m3 encode --model DIR (--input FILE.jsonl | TEXT ...) [--output FILE.jsonl]
                    [--max-length N] [--batch-size N] [--dense] [--sparse] [--colbert] [--backend NAME] [--force]

Input lines are {"id": ..., "text": "..."}. Writes one JSON line per input, in input order, to --output
(refused if it exists, unless --force) or stdout:
  {"id", "input_ids": [...], "dense": [...], "lexical_weights": {"<token id>": w}, "colbert": [[...], ...]}
Only the requested outputs are written; none of --dense/--sparse/--colbert means all three.
`;

/** Texts encoded per chunk: output is written chunk by chunk, so memory stays bounded on big inputs. */
const CHUNK = 512;

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

export async function run(argv: string[], io: CliIO = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  return runCommand('encode', USAGE, io, async () => {
    const { values, positionals } = parseCli(argv, {
      model: { type: 'string' }, input: { type: 'string' }, output: { type: 'string' },
      'max-length': { type: 'string' }, 'batch-size': { type: 'string' },
      dense: { type: 'boolean' }, sparse: { type: 'boolean' }, colbert: { type: 'boolean' },
      backend: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    }, true);
    if (values.help) {
      stdout.write(USAGE);
      return 0;
    }
    if (!values.model) throw new CliError('--model DIR is required', true);
    if (values.input !== undefined && positionals.length > 0) throw new CliError('give --input FILE or TEXT arguments, not both', true);
    if (values.input === undefined && positionals.length === 0) throw new CliError('nothing to encode: give --input FILE.jsonl or TEXT arguments', true);
    const maxLength = intFlag(values['max-length'], 'max-length', 2);
    const batchSize = intFlag(values['batch-size'], 'batch-size', 1);
    const backend = backendFlag(values.backend);
    const none = !values.dense && !values.sparse && !values.colbert;
    const want = { returnDense: none || !!values.dense, returnSparse: none || !!values.sparse, returnColbert: none || !!values.colbert };

    const records: InputRecord[] = values.input !== undefined ? await readJsonl(values.input) : positionals.map((text, i) => ({ id: i, text }));
    const out = values.output !== undefined ? await openOutput(values.output, !!values.force) : undefined;
    const m3 = await BgeM3.load(values.model, { backend, onWarning: (w) => stderr.write(`warning: ${w}\n`) });
    const bar = createProgress('encode', records.length, 'items', { stream: stderr });
    try {
      for (let start = 0; start < records.length; start += CHUNK) {
        const chunk = records.slice(start, start + CHUNK);
        const result = await m3.encode(chunk.map((r) => r.text), {
          ...want, maxLength, batchSize, onProgress: (done) => bar.update(start + done),
        });
        const text = chunk.map((r, i) => `${outputLine(r.id, i, result)}\n`).join('');
        if (out) await out.write(text);
        else if (!stdout.write(text)) await new Promise((resolve) => stdout.once('drain', resolve));
      }
    } finally {
      bar.stop();
      await out?.close();
      m3.dispose();
    }
    return 0;
  });
}
