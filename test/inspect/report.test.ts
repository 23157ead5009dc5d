/**
 * The inspection report holds what the model computed: attention bytes decode back to hook_probs within
 * the quantisation step, norms are those of the cached hidden states, scores and explanations are the
 * ones computeScore / explain.ts give. The page is self-contained and small for a 512-token passage.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { explainColbert, explainTokenWeights } from '../../src/explain.js';
import { layerName } from '../../src/hooks/names.js';
import { patchHead } from '../../src/attribution/patching.js';
import { buildReport, type InspectReport } from '../../src/inspect/report.js';
import { renderPage } from '../../src/inspect/page.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases } from '../helpers/reference.js';

const cases = new Map(loadCases().map((c) => [c.id, c]));
const QUERY = cases.get('readme_q1')!.text;
const PASSAGE = cases.get('readme_p1')!.text;

const unpack = (b64: string): Uint8Array => new Uint8Array(gunzipSync(Buffer.from(b64, 'base64')));

describe('inspection report (sharp-m3)', () => {
  let m3: BgeM3;
  let report: InspectReport;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('sharp-m3'));
    report = await buildReport(m3, QUERY, PASSAGE, { modelName: 'sharp-m3' });
  });
  afterAll(() => m3.dispose());

  it('attention: one blob per layer, [heads, T, T] bytes = round(255·√p) of hook_probs', async () => {
    const L = m3.config.num_hidden_layers;
    for (const [ti, text] of [QUERY, PASSAGE].entries()) {
      const r = report.texts[ti]!;
      const T = r.tokens.length;
      expect(r.attention).toMatchObject({ encoding: 'sqrt-u8', heads: m3.config.num_attention_heads, length: T });
      expect(r.attention.layers).toHaveLength(L);
      const names = Array.from({ length: L }, (_, i) => layerName(i, 'attention.self.hook_probs'));
      const { cache } = await m3.runWithCache([text], { names, maxLength: report.maxLength });
      try {
        for (let i = 0; i < L; i++) {
          const bytes = unpack(r.attention.layers[i]!);
          const want = cache.get(names[i]!).dataSync() as Float32Array; // [1, heads, T, T]
          expect(bytes.length).toBe(want.length);
          let worst = 0;
          for (let x = 0; x < want.length; x++) {
            const expected = Math.round(255 * Math.sqrt(want[x]!));
            worst = Math.max(worst, Math.abs(bytes[x]! - expected));
          }
          expect(worst).toBeLessThanOrEqual(1); // rounding at a .5 boundary may land either side
          // decoded rows still sum to about 1
          const heads = r.attention.heads;
          for (let k = 0; k < heads * T; k += 7) {
            let s = 0;
            for (let j = 0; j < T; j++) s += (bytes[k * T + j]! / 255) ** 2;
            expect(Math.abs(s - 1)).toBeLessThan(0.05);
          }
        }
      } finally {
        cache.dispose();
      }
    }
  });

  it('tokens and norms: the sparse head per position and the L2 norms of each stage', async () => {
    const tw = await explainTokenWeights(m3, [QUERY]);
    expect(report.texts[0]!.tokens).toEqual(tw[0]);
    expect(report.texts[0]!.fullLength).toBe(tw[0]!.length);
    const L = m3.config.num_hidden_layers;
    const names = ['embeddings.hook_out' as const, ...Array.from({ length: L }, (_, i) => layerName(i, 'hook_out'))];
    const { cache } = await m3.runWithCache([PASSAGE], { names });
    try {
      const { mean, max } = report.texts[1]!.norms;
      expect(mean).toHaveLength(L + 1);
      names.forEach((n, s) => {
        const x = cache.get(n);
        const [, T, H] = x.shape as [number, number, number];
        const d = x.dataSync();
        const norms = Array.from({ length: T }, (_, t) => Math.hypot(...d.subarray(t * H, (t + 1) * H)));
        expect(Math.abs(mean[s]! - norms.reduce((a, b) => a + b, 0) / T)).toBeLessThan(1e-4);
        expect(Math.abs(max[s]! - Math.max(...norms))).toBeLessThan(1e-4);
      });
    } finally {
      cache.dispose();
    }
  });

  it('pair: the scores computeScore gives, the lexical and ColBERT explanations', async () => {
    const s = await m3.computeScore([[QUERY, PASSAGE]]);
    const pair = report.pair!;
    for (const k of ['dense', 'sparse', 'colbert', 'sparse+dense', 'colbert+sparse+dense'] as const) expect(pair.scores[k]).toBe(s[k][0]);
    expect(pair.lexical.score).toBe(pair.scores.sparse);
    const [q, p] = [await m3.encode([QUERY], { returnColbert: true }), await m3.encode([PASSAGE], { returnColbert: true })];
    const c = explainColbert(q.colbertVecs![0]!, p.colbertVecs![0]!); // each text alone, as the report runs them
    expect(pair.colbert.matches).toEqual(c.matches);
    expect([pair.colbert.queryRows, pair.colbert.passageRows]).toEqual([c.queryRows, c.passageRows]);
    const sim = unpack(pair.colbert.similarity);
    expect(sim.length).toBe(c.similarity.length);
    for (let x = 0; x < sim.length; x++) expect(Math.abs(sim[x]! / 127.5 - 1 - c.similarity[x]!)).toBeLessThanOrEqual(0.5 / 127.5 + 1e-6);
  });

  it('page: self-contained HTML, no external resources, data safely embedded', () => {
    const html = renderPage(report);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<(script|link|img|iframe)[^>]+(src|href)=/i); // nothing loaded
    expect(html).toContain('uPlot'); // the chart library is inlined
    const data = /<script id="report-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html)![1]!;
    expect(JSON.parse(data)).toEqual(JSON.parse(JSON.stringify(report)));
    // a text with a closing script tag stays inside the JSON
    const tricky = renderPage({ ...report, texts: [{ ...report.texts[0]!, text: '</script><script>alert(1)</script>' }] });
    expect(tricky.match(/<\/script>/g)!.length).toBe(html.match(/<\/script>/g)!.length);
  });

  it('page: the script is the bundled client module (main.ts + views.ts), inlined whole', () => {
    const html = renderPage(report);
    const compiled = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../dist/inspect/client/main.js'), 'utf8');
    const module = /<script type="module">\n([\s\S]*?)\n<\/script>/.exec(html)?.[1];
    expect(module).toBe(compiled.replace(/<\/script/gi, '<\\/script'));
    expect(module).toContain('async function renderReport('); // the views, bundled in (scripts/build-inspect-client.mjs)
    expect(module).not.toMatch(/__name|: HTMLElement|import /); // plain JS: no esbuild shim, no types, no run-time imports
  });

  it('layers: a subset of the attention, the rest unchanged', async () => {
    const some = await buildReport(m3, QUERY, PASSAGE, { layers: [1] });
    for (const [ti, t] of some.texts.entries()) {
      expect(t.attention.layerIds).toEqual([1]);
      expect(t.attention.layers).toEqual([report.texts[ti]!.attention.layers[1]]);
      expect(t.norms).toEqual(report.texts[ti]!.norms);
    }
    await expect(buildReport(m3, QUERY, undefined, { layers: [2] })).rejects.toThrow(/layer indices in \[0, 1\]/);
  });

  it('hooks: a report of the model with a head ablated is runWithHooks\'s (tokens, scores, lens), and leaks nothing', async () => {
    const hooks = { [layerName(0, 'attention.self.hook_out')]: patchHead(1, m3.config.num_attention_heads, undefined) };
    const before = tf.memory().numTensors;
    const r = await buildReport(m3, QUERY, PASSAGE, { hooks, lens: 'm3' });
    expect(tf.memory().numTensors).toBe(before);
    const [q, p] = [await m3.runWithHooks([QUERY], hooks), await m3.runWithHooks([PASSAGE], hooks)];
    let err = 0;
    for (const [ti, out] of [q, p].entries()) {
      const weights: Record<string, number> = {};
      for (const t of r.texts[ti]!.tokens) if (!t.special && t.weight > 0) weights[t.id] = Math.max(weights[t.id] ?? 0, t.weight);
      expect(Object.keys(weights).sort()).toEqual(Object.keys(out.lexicalWeights![0]!).sort());
      for (const [id, w] of Object.entries(weights)) err = Math.max(err, Math.abs(w - out.lexicalWeights![0]![id]!));
      // the lens's last row is the sparse head as the (ablated) model runs it
      expect(r.lens![ti]!.weights.at(-1)!.map((w) => Math.max(0, w))).toEqual(r.texts[ti]!.tokens.map((t) => t.weight));
    }
    const colbert = explainColbert(q.colbertVecs![0]!, p.colbertVecs![0]!).score;
    console.log(`report with L0H1 ablated vs runWithHooks: lexical weights max abs error ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-6);
    expect(Math.abs(r.pair!.scores.colbert - colbert)).toBeLessThanOrEqual(1e-6);
    expect(r.pair!.scores.dense).not.toBeCloseTo(report.pair!.scores.dense, 6); // the ablation shows
  });

  it('tensors: building a report leaks none', async () => {
    const before = tf.memory().numTensors;
    await buildReport(m3, QUERY, PASSAGE);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('inspection page size for a 512-token passage (small-m3)', () => {
  it('stays small: attention is decoded on demand from gzip\'d bytes', async () => {
    const m3 = await BgeM3.load(checkpointDir('small-m3'));
    try {
      const long = cases.get('long_3k')!.text;
      const report = await buildReport(m3, QUERY, long, { maxLength: 512 });
      expect(report.texts[1]!.tokens).toHaveLength(512);
      expect(report.texts[1]!.fullLength).toBe(cases.get('long_3k')!.input_ids.length);
      const html = renderPage(report);
      const mb = Buffer.byteLength(html) / 1e6;
      const raw = m3.config.num_hidden_layers * m3.config.num_attention_heads * 512 * 512;
      console.log(`small-m3, 10 + 512 tokens: page ${mb.toFixed(2)} MB (attention alone would be ${(raw / 1e6).toFixed(1)} MB as bytes, ${(raw * 4 / 1e6).toFixed(1)} MB as float32)`);
      expect(mb).toBeLessThan(3);
    } finally {
      m3.dispose();
    }
  });
});
