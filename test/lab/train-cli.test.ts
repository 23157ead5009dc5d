/**
 * `bge-m3 sparse train` on a small BEIR-layout set made here (tiny-m3): writes a head folder that
 * loads, prints the curve, resumes from its checkpoint, reads hidden states from the
 * `sparse cache` caches with the same numbers as in memory, and names bad flags.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { run } from '../../src/cli/sparse-train.js';
import { BgeM3 } from '../../src/m3.js';
import { documentText, readBeir } from '../../src/lab/beir.js';
import { loadHead } from '../../src/lab/head-io.js';
import { writeHiddenCache } from '../../src/lab/hidden-cache.js';
import { rng } from '../../src/lab/train.js';
import { checkpointDir } from '../helpers/fixtures.js';

function sink() {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
  return { stream, get text() { return text; } };
}

const MODEL = checkpointDir('tiny-m3');
const WORDS = ['river', 'mountain', 'violin', 'harbour', 'glacier', 'lantern', 'copper', 'meadow', 'falcon', 'orchid', 'granite', 'thunder', 'saffron', 'compass', 'ember', 'willow'];
const COMMON = ['the', 'of', 'and', 'is', 'a', 'in'];

/** 16 documents, 8 training queries sharing two rare words with their document; a score-0 line each. */
async function makeBeir(dir: string): Promise<void> {
  const rand = rng(4);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  await mkdir(join(dir, 'qrels'), { recursive: true });
  const docs = WORDS.map((w, i) => ({ _id: `doc${i}`, title: i % 2 ? `${w} notes` : '', text: [w, WORDS[(i + 5) % 16], ...Array.from({ length: 8 }, () => pick(COMMON))].join(' ') }));
  const queries = Array.from({ length: 8 }, (_, i) => ({ _id: `q${i}`, text: `${WORDS[i]} ${WORDS[(i + 5) % 16]} ${pick(COMMON)} ${pick(COMMON)}` }));
  await writeFile(join(dir, 'corpus.jsonl'), docs.map((d) => JSON.stringify(d)).join('\n'));
  await writeFile(join(dir, 'queries.jsonl'), queries.map((q) => JSON.stringify(q)).join('\n'));
  await writeFile(join(dir, 'qrels', 'train.tsv'), `query-id\tcorpus-id\tscore\n${queries.map((q, i) => `${q._id}\tdoc${i}\t1\n${q._id}\tdoc${(i + 3) % 16}\t0`).join('\n')}\n`);
}

describe('bge-m3 sparse train (tiny-m3)', () => {
  let tmp: string;
  let beir: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'bge-m3-train-cli-'));
    beir = join(tmp, 'beir');
    await makeBeir(beir);
  });
  afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

  const base = () => ['--model', MODEL, '--beir', beir, '--split', 'train', '--head', 'm3', '--batch-size', '4', '--lr', '0.01', '--seed', '2', '--flops-weight', '0.001'];

  it('trains, writes a loadable head folder, resumes from its checkpoint', async () => {
    const out = join(tmp, 'head');
    const o = sink();
    const e = sink();
    expect(await run([...base(), '--out', out, '--epochs', '2'], { stdout: o.stream, stderr: e.stream })).toBe(0);
    const r = JSON.parse(o.text);
    expect(r.examples).toBe(8);
    expect(r.curve).toHaveLength(2);
    expect(e.text).toMatch(/epoch 1\/2: loss \d+\.\d+, nnz\/query \d/);
    for (const f of ['head.json', 'sparse_linear.safetensors', 'sparse_linear.pt', 'training.json']) expect(existsSync(join(out, f))).toBe(true);
    expect(existsSync(join(tmp, 'head.train', 'epoch-0002'))).toBe(true);
    const m3 = await BgeM3.load(MODEL);
    const head = await loadHead(out, m3);
    expect(head.name).toBe('m3');
    head.dispose();
    m3.dispose();
    // An existing OUT is refused without --force; --resume continues after epoch 2.
    const e2 = sink();
    expect(await run([...base(), '--out', out, '--epochs', '3'], { stdout: sink().stream, stderr: e2.stream })).toBe(1);
    expect(e2.text).toMatch(/head exists; pass --force to replace it/);
    const o3 = sink();
    expect(await run([...base(), '--out', out, '--epochs', '3', '--resume', '--force'], { stdout: o3.stream, stderr: sink().stream })).toBe(0);
    const r3 = JSON.parse(o3.text);
    expect(r3.resumedAfter).toBe(2);
    expect(r3.curve.slice(0, 2)).toEqual(r.curve);
    expect(r3.curve).toHaveLength(3);
    expect(JSON.parse(await readFile(join(out, 'training.json'), 'utf8')).curve).toEqual(r3.curve);
  });

  it('--cache reads the hidden-state caches and gives the in-memory numbers', async () => {
    const m3 = await BgeM3.load(MODEL);
    const set = await readBeir(beir, 'train');
    const cache = join(tmp, 'cache');
    await writeHiddenCache(m3, [...set.queries].map(([id, text]) => ({ id, text })), join(cache, 'queries'));
    await writeHiddenCache(m3, [...set.corpus].map(([id, d]) => ({ id, text: documentText(d) })), join(cache, 'corpus'));
    m3.dispose();
    const a = sink();
    const b = sink();
    expect(await run([...base(), '--out', join(tmp, 'mem'), '--epochs', '1'], { stdout: a.stream, stderr: sink().stream })).toBe(0);
    expect(await run([...base(), '--out', join(tmp, 'cached'), '--epochs', '1', '--cache', cache], { stdout: b.stream, stderr: sink().stream })).toBe(0);
    expect(JSON.parse(b.text).curve).toEqual(JSON.parse(a.text).curve);
    // Distillation from the dense or ColBERT scores runs through the same pass.
    for (const mode of ['dense', 'colbert']) {
      const d = sink();
      expect(await run([...base(), '--out', join(tmp, `distil-${mode}`), '--epochs', '1', '--cache', cache, '--distill', mode, '--distill-weight', '0.5'], { stdout: d.stream, stderr: sink().stream })).toBe(0);
      const loss = JSON.parse(d.text).curve[0].loss;
      expect(Number.isFinite(loss) && loss !== JSON.parse(b.text).curve[0].loss).toBe(true);
    }
    const e = sink();
    expect(await run([...base(), '--out', join(tmp, 'x'), '--layer', '1', '--cache', cache], { stdout: sink().stream, stderr: e.stream })).toBe(1);
    expect(e.text).toMatch(/queries is not the cache of this run: layer: the cache holds hidden_states\[2\], the head reads hidden_states\[1\]/);
  });

  it('names bad flags', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--model', MODEL, '--head', 'm3', '--out', join(tmp, 'y')], /--beir is required/],
      [[...base(), '--out', join(tmp, 'y'), '--lr', '0'], /--lr must be a positive number, got '0'/],
      [[...base(), '--out', join(tmp, 'y'), '--epochs', '0'], /--epochs must be an integer >= 1/],
      [[...base(), '--out', join(tmp, 'y'), '--distill', 'cross'], /--distill must be dense or colbert/],
      [[...base(), '--out', join(tmp, 'y'), '--top-k', '5'], /--top-k applies to the splade head only/],
      [[...base(), '--out', join(tmp, 'y'), '--nope'], /Unknown option '--nope'/],
      [[...base().map((x) => (x === 'm3' ? 'bm25' : x)), '--out', join(tmp, 'y')], /--head bm25 reads token ids only/],
    ];
    for (const [args, msg] of cases) {
      const e = sink();
      expect(await run(args, { stdout: sink().stream, stderr: e.stream })).toBe(2);
      expect(e.text).toMatch(msg);
    }
    expect(existsSync(join(tmp, 'y'))).toBe(false);
  });
});
