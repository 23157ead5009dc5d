/**
 * `bge-m3 sparse train --cache` against training in memory, on sets shaped like real use: 64
 * documents and 40 queries, cached by `bge-m3 sparse cache` with its default batch size (so several
 * parts per side, more than one training step reads at once), texts of equal and of unequal
 * lengths. The loss curve and the saved head must be the same bit for bit. Then stale and foreign
 * caches: each refused, naming what differs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { run as train } from '../../src/cli/sparse-train.js';
import { run as cache } from '../../src/cli/sparse-cache.js';
import { rng } from '../../src/lab/train.js';
import { M3Tokenizer } from '../../src/tokenizer.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { singleTokenWords } from './beir-fixture.js';

function sink() {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
  return { stream, get text() { return text; } };
}

const MODEL = checkpointDir('tiny-m3');
const DOCS = 64;
const QUERIES = 40;
const root = mkdtempSync(join(tmpdir(), 'train-cache-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * A BEIR-layout set: query i judges document i relevant (score 1) and document (i + 7) mod 64 not
 * (score 0, a hard negative); they share two rare words. Every word is one token, so with `equal`
 * every document is 12 words (14 tokens) and every query 4 (6 tokens); otherwise lengths vary.
 */
function makeSet(dir: string, words: string[], equal: boolean): void {
  const r = rng(equal ? 11 : 12);
  const pick = () => words[Math.floor(r() * words.length)]!;
  const rare = Array.from({ length: DOCS }, () => [pick(), pick()]);
  const docLen = (i: number) => (equal ? 12 : 3 + ((i * 5) % 17));
  const qLen = (i: number) => (equal ? 4 : 2 + (i % 5));
  const text = (must: string[], n: number) => {
    const ws = Array.from({ length: Math.max(0, n - must.length) }, pick);
    for (const w of must) ws.splice(Math.floor(r() * (ws.length + 1)), 0, w);
    return ws.join(' ');
  };
  mkdirSync(join(dir, 'qrels'), { recursive: true });
  writeFileSync(join(dir, 'corpus.jsonl'), Array.from({ length: DOCS }, (_, i) => JSON.stringify({ _id: `doc${i}`, text: text(rare[i]!, docLen(i)) })).join('\n') + '\n');
  writeFileSync(join(dir, 'queries.jsonl'), Array.from({ length: QUERIES }, (_, i) => JSON.stringify({ _id: `q${i}`, text: text(rare[i]!, qLen(i)) })).join('\n') + '\n');
  writeFileSync(join(dir, 'qrels', 'train.tsv'), `query-id\tcorpus-id\tscore\n${Array.from({ length: QUERIES }, (_, i) => `q${i}\tdoc${i}\t1\nq${i}\tdoc${(i + 7) % DOCS}\t0`).join('\n')}\n`);
}

async function cli(fn: typeof train, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = sink();
  const e = sink();
  const code = await fn(args, { stdout: o.stream, stderr: e.stream });
  return { code, out: o.text, err: e.text };
}

async function makeCache(beir: string, dir: string, extra: string[] = []): Promise<void> {
  for (const side of ['queries', 'corpus']) {
    const r = await cli(cache, ['--model', MODEL, '--beir', beir, '--side', side, '--out', join(dir, side), ...extra]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  }
}

const parts = (dir: string) => readdirSync(dir).filter((f) => /^part-\d{6}\.safetensors$/.test(f));

describe('sparse train --cache (tiny-m3, 64 documents, 40 queries, cached in several parts)', () => {
  let words: string[];
  beforeAll(async () => {
    words = singleTokenWords(await M3Tokenizer.fromDir(MODEL)).slice(0, 400);
  });

  for (const equal of [true, false]) {
    it(`gives the in-memory loss curve and head bit for bit (texts of ${equal ? 'equal' : 'unequal'} lengths)`, async () => {
      const dir = join(root, equal ? 'equal' : 'unequal');
      const beir = join(dir, 'beir');
      makeSet(beir, words, equal);
      await makeCache(beir, join(dir, 'cache'));
      // The default limits (16 texts a batch, padding bounded) give several parts per side: more than
      // one training step touches (40 queries, 64 documents: at least 3 and 4).
      expect(parts(join(dir, 'cache', 'queries')).length).toBeGreaterThanOrEqual(3);
      expect(parts(join(dir, 'cache', 'corpus')).length).toBeGreaterThanOrEqual(4);
      const base = ['--model', MODEL, '--beir', beir, '--head', 'm3', '--epochs', '2', '--seed', '3', '--lr', '0.01', '--flops-weight', '0.001'];
      const mem = await cli(train, [...base, '--out', join(dir, 'mem')]);
      expect(mem.err).toMatch(/epoch 2\/2/);
      expect(mem.code).toBe(0);
      const cached = await cli(train, [...base, '--out', join(dir, 'cached'), '--cache', join(dir, 'cache')]);
      expect(cached.err).toMatch(/epoch 2\/2/);
      expect(cached.code).toBe(0);
      const [a, b] = [JSON.parse(mem.out).curve, JSON.parse(cached.out).curve];
      const diff = Math.max(...a.map((e: { loss: number }, i: number) => Math.abs(e.loss - b[i].loss)));
      console.log(`${equal ? 'equal' : 'unequal'} lengths: losses ${a.map((e: { loss: number }) => e.loss.toFixed(6)).join(', ')}; max abs difference --cache vs memory ${diff}`);
      expect(b).toEqual(a);
      expect(readFileSync(join(dir, 'cached', 'sparse_linear.safetensors'))).toEqual(readFileSync(join(dir, 'mem', 'sparse_linear.safetensors')));
    });
  }

  it('refuses a stale cache (texts changed, ids kept), other limits, --max-length, another model, layer or part, naming what differs', async () => {
    const dir = join(root, 'stale');
    const beir = join(dir, 'beir');
    makeSet(beir, words, false);
    await makeCache(beir, join(dir, 'cache'));
    const base = ['--model', MODEL, '--head', 'm3', '--epochs', '1', '--out', join(dir, 'never')];
    const refused = async (args: string[], msg: RegExp) => {
      const r = await cli(train, [...base, ...args]);
      expect(r.err).toMatch(msg);
      expect(r.code).toBe(1);
    };
    const ok = await cli(train, [...base, '--beir', beir, '--cache', join(dir, 'cache'), '--out', join(dir, 'ok')]);
    expect(ok.code).toBe(0);

    // The same ids, one document's text changed.
    const changed = join(dir, 'changed');
    makeSet(changed, words, false);
    const lines = readFileSync(join(changed, 'corpus.jsonl'), 'utf8').split('\n');
    lines[5] = JSON.stringify({ _id: 'doc5', text: 'a different text' });
    writeFileSync(join(changed, 'corpus.jsonl'), lines.join('\n'));
    await refused(['--beir', changed, '--cache', join(dir, 'cache')], /cache[/\\]corpus.*corpus texts differ.*same 64 ids.*Rebuild it/s);
    // One query more.
    const more = join(dir, 'more');
    makeSet(more, words, false);
    writeFileSync(join(more, 'queries.jsonl'), `${readFileSync(join(more, 'queries.jsonl'), 'utf8')}${JSON.stringify({ _id: 'q-extra', text: 'one more' })}\n`);
    await refused(['--beir', more, '--cache', join(dir, 'cache')], /cache[/\\]queries.*ids: the cache holds 40 texts, .*queries\.jsonl 41/s);
    // --max-length is compared, not ignored.
    await refused(['--beir', beir, '--cache', join(dir, 'cache'), '--max-length', '8'], /max_length: the cache was written with 8192, this run asks for 8/);
    // A cache written with other limits.
    const small = join(dir, 'small');
    await makeCache(beir, small, ['--batch-size', '4']);
    await refused(['--beir', beir, '--cache', small], /batch_size: the cache was written with 4, this run asks for 16/);
    // Another model (sharp-m3 has the same vocabulary and hidden size).
    await refused(['--beir', beir, '--cache', join(dir, 'cache'), '--model', checkpointDir('sharp-m3')], /model fingerprint/);
    // Another layer.
    await refused(['--beir', beir, '--cache', join(dir, 'cache'), '--layer', '1'], /layer: the cache holds hidden_states\[2\], the head reads hidden_states\[1\]/);

    // A part of another layer dropped into the cache: refused when read, naming the part and the field.
    const other = join(dir, 'layer1');
    await makeCache(beir, other, ['--layer', '1']);
    copyFileSync(join(other, 'corpus', 'part-000002.safetensors'), join(dir, 'cache', 'corpus', 'part-000002.safetensors'));
    await refused(['--beir', beir, '--cache', join(dir, 'cache')], /corpus[/\\]part-000002\.safetensors: layer is 1 in this part, 2 in the cache's manifest/);
    // A part of an F16 cache: its dtype.
    const f16 = join(dir, 'f16');
    await makeCache(beir, f16, ['--float16']);
    copyFileSync(join(f16, 'corpus', 'part-000002.safetensors'), join(dir, 'cache', 'corpus', 'part-000002.safetensors'));
    await refused(['--beir', beir, '--cache', join(dir, 'cache')], /corpus[/\\]part-000002\.safetensors: dtype is "F16" in this part, "F32" in the cache's manifest/);
    // An F16 cache is used, with a word that it is rounded.
    const half = await cli(train, [...base, '--beir', beir, '--cache', f16, '--out', join(dir, 'half')]);
    expect(half.code).toBe(0);
    expect(half.err).toMatch(/warning: --cache .*f16[/\\]queries holds F16 hidden states .*not equal training in memory bit for bit/);
  });
});
