/**
 * `bge-m3 sparse cache`: the hidden-state pass of the sparse-head lab (see src/lab/hidden-cache.ts),
 * and `bge-m3 sparse cache merge` to combine shard directories.
 */
import { readCorpus, readQueries } from '../lab/beir.js';
import { clearHiddenCache, corpusTexts, mergeHiddenCaches, parseShard, queryTexts, writeHiddenCache, type CacheText } from '../lab/hidden-cache.js';
import { defineCommand } from './command.js';
import { CliError, intFlag, readJsonl, type CliIO } from './io.js';
import { createProgress } from './progress.js';

export const USAGE = `Usage: bge-m3 sparse cache --model DIR (--beir DIR [--side corpus|queries] | --input FILE.jsonl) --out DIR
                          [--layer I] [--float16] [--shard I/N] [--resume | --force]
                          [--max-length N] [--batch-size N] [--max-tokens-per-batch N] [--backend NAME]
       bge-m3 sparse cache merge --out DIR SHARD_DIR...

Runs the encoder once over a corpus and writes hidden_states[I] (default: the last layer) of every
text to safetensors parts in --out, batched exactly as encode batches them (bit-identical states).
  --beir DIR      a BEIR-layout set: its corpus (title + " " + text), or its queries with --side queries
  --input FILE    JSONL lines {"id": ..., "text": "..."} (- reads standard input)
  --shard I/N     run only batches I, I+N, I+2N, ... of the plan (0 <= I < N), e.g. one array task each
  --resume        keep the finished parts of an interrupted run in --out and do the rest
  --force         start over: delete the cache in --out first (refused, deleting nothing, when --out
                  holds anything but a hidden-state cache; not with --shard)
  --float16       store F16 (half the disk) instead of exact F32
merge copies the parts of shard directories (run on separate machines) into one cache in --out,
refusing shards of another model, layer, dtype, limits or corpus, and overlapping shards.
Prints one JSON line: {"out", "batches", "written", "kept"} (merge: {"out", "copied"}); --json, which other
commands take to print JSON instead of a table, is accepted and changes nothing.
`;

const merge = defineCommand({
  name: 'sparse cache', usage: USAGE, positionals: true,
  options: { out: { type: 'string' }, json: { type: 'boolean' } },
}, async ({ values, positionals, stdout }) => {
  if (!values.out) throw new CliError('--out DIR is required', true);
  if (positionals.length === 0) throw new CliError('give the shard directories to merge', true);
  const copied = await mergeHiddenCaches(positionals, values.out);
  stdout.write(`${JSON.stringify({ out: values.out, copied })}\n`);
  return 0;
});

async function texts(values: { beir?: string; side?: string; input?: string }, onWarning: (message: string) => void): Promise<CacheText[]> {
  if (values.beir !== undefined) {
    const side = values.side ?? 'corpus';
    if (side !== 'corpus' && side !== 'queries') throw new CliError(`--side must be corpus or queries, got '${side}'`, true);
    return side === 'corpus' ? corpusTexts(await readCorpus(values.beir, { onWarning })) : queryTexts(await readQueries(values.beir, { onWarning }));
  }
  const records = await readJsonl(values.input!, onWarning);
  return records.map((r, i) => {
    if (typeof r.id !== 'string' && typeof r.id !== 'number') throw new CliError(`${values.input}: record ${i + 1}: "id" must be a string or number`);
    return { id: String(r.id), text: r.text };
  });
}

/** The hidden-state pass. */
const pass = defineCommand({
  name: 'sparse cache', usage: USAGE, positionals: false,
  options: {
    model: { type: 'string' }, beir: { type: 'string' }, side: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' },
    layer: { type: 'string' }, float16: { type: 'boolean' }, shard: { type: 'string' }, resume: { type: 'boolean' }, force: { type: 'boolean' },
    'max-length': { type: 'string' }, 'batch-size': { type: 'string' }, 'max-tokens-per-batch': { type: 'string' },
    backend: { type: 'string' }, json: { type: 'boolean' },
  },
}, async ({ values, stdout, stderr, warn, modelDir, load }) => {
  const dir = modelDir();
  if (!values.out) throw new CliError('--out DIR is required', true);
  if ((values.beir === undefined) === (values.input === undefined)) throw new CliError('give exactly one of --beir DIR or --input FILE.jsonl', true);
  if (values.side !== undefined && values.beir === undefined) throw new CliError('--side needs --beir', true);
  let shard;
  try {
    shard = values.shard !== undefined ? parseShard(values.shard) : undefined;
  } catch (e) {
    throw new CliError(`--shard: ${(e as Error).message}`, true);
  }
  if (values.force && values.resume) throw new CliError('give --resume (keep the finished parts) or --force (start over), not both', true);
  if (values.force && shard !== undefined && shard.count > 1) {
    throw new CliError('--force deletes the whole cache, which other shards may be writing: delete --out yourself, or use a new one', true);
  }
  const layer = intFlag(values.layer, 'layer', 0);
  const opts = {
    layer, shard, resume: !!values.resume, float16: !!values.float16,
    maxLength: intFlag(values['max-length'], 'max-length', 2),
    batchSize: intFlag(values['batch-size'], 'batch-size', 1),
    maxTokensPerBatch: intFlag(values['max-tokens-per-batch'], 'max-tokens-per-batch', 1),
  };
  const items = await texts(values, warn);
  const m3 = await load(dir);
  if (layer !== undefined && layer > m3.config.num_hidden_layers) {
    m3.dispose();
    throw new CliError(`--layer must be in [0, ${m3.config.num_hidden_layers}] (0 = embeddings), got ${layer}`, true);
  }
  let bar: ReturnType<typeof createProgress> | undefined;
  try {
    if (values.force) {
      try {
        await clearHiddenCache(values.out);
      } catch (e) {
        throw new CliError(`--force: ${(e as Error).message}`);
      }
    }
    const result = await writeHiddenCache(m3, items, values.out, {
      ...opts,
      onProgress: (done, total) => {
        bar ??= createProgress('cache', total, 'items', { stream: stderr });
        bar.update(done);
      },
    });
    stdout.write(`${JSON.stringify({ out: values.out, ...result })}\n`);
  } finally {
    bar?.stop();
    m3.dispose();
  }
  return 0;
});

/** `sparse cache …` or `sparse cache merge …`. */
export async function run(argv: string[], io: CliIO = {}): Promise<number> {
  return argv[0] === 'merge' ? merge(argv.slice(1), io) : pass(argv, io);
}
