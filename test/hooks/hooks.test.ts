/** Hooks that read and edit activations, the activation cache, and activation names. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BgeM3 } from '../../src/m3.js';
import { allActivationNames, LAYER_SITES, MODEL_SITES, type ActivationName } from '../../src/hooks/names.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases, maxAbsDiff, Reference, sparseMaxAbsDiff } from '../helpers/reference.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cases = new Map(loadCases().map((c) => [c.id, c]));
const ids = (...names: string[]) => ({ inputIds: names.map((n) => cases.get(n)!.input_ids) });

describe('hooks on sharp-m3', () => {
  let m3: BgeM3;
  let last: number;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('sharp-m3'));
    last = m3.config.num_hidden_layers - 1;
  });
  afterAll(() => m3.dispose());

  it('runWithCache caches exactly what the filter selects, with values equal to the reference', async () => {
    const names: ActivationName[] = ['embeddings.hook_out', `encoder.layer.${last}.hook_out`, 'encoder.layer.0.attention.self.hook_probs'];
    const { cache } = await m3.runWithCache(ids('readme_q1'), { names });
    expect(cache.names().sort()).toEqual([...names].sort());
    const ref = await Reference.open('sharp-m3');
    for (const n of names) {
      const err = maxAbsDiff(cache.get(n).dataSync(), (await ref.tensor('readme_q1', n)).data);
      expect(err, n).toBeLessThanOrEqual(1e-4);
    }
    await ref.close();
    expect(() => cache.get('encoder.layer.0.hook_out')).toThrow(/was not cached/);
    cache.dispose();
  });

  it('caches every activation (the default), each with its documented shape', async () => {
    const { cache } = await m3.runWithCache(ids('readme_q1', 'readme_q2'));
    const [B, T] = [2, cases.get('readme_q1')!.input_ids.length];
    const c = m3.config;
    const d = c.hidden_size / c.num_attention_heads;
    expect(cache.names()).toEqual(allActivationNames(c.num_hidden_layers));
    const shape: Record<string, number[]> = {
      'attention.self.hook_q': [B, c.num_attention_heads, T, d], 'attention.self.hook_scores': [B, c.num_attention_heads, T, T],
      'attention.self.hook_out': [B, T, c.hidden_size], 'intermediate.hook_out': [B, T, c.intermediate_size],
      'sparse_linear.hook_out': [B, T, 1], 'sparse_head.hook_out': [B, T], 'dense_head.hook_out': [B, c.hidden_size],
      'colbert_head.hook_out': [B, T - 1, m3.params.colbert_linear.weight.shape[0]],
    };
    for (const [site, s] of Object.entries(shape)) {
      const name = (MODEL_SITES as readonly string[]).includes(site) ? site : `encoder.layer.0.${site}`;
      expect(cache.get(name as ActivationName).shape, name).toEqual(s);
    }
    // the padded key of the shorter text is −inf in the scores and 0 in the probabilities
    const scores = cache.get('encoder.layer.0.attention.self.hook_scores').arraySync() as number[][][][];
    expect(scores[1]![0]![0]![T - 1]).toBe(-Infinity);
    expect((cache.get('encoder.layer.0.attention.self.hook_probs').arraySync() as number[][][][])[1]![0]![0]![T - 1]).toBe(0);
    cache.dispose();
  });

  it('patching a layer output with a cached copy of itself changes nothing', async () => {
    const name: ActivationName = 'encoder.layer.0.hook_out';
    const { output: base, cache } = await m3.runWithCache(ids('zh_bge'), { names: [name] });
    const patched = await m3.runWithHooks(ids('zh_bge'), { [name]: () => tf.clone(cache.get(name)) });
    expect(maxAbsDiff(patched.denseVecs![0]!, base.denseVecs![0]!)).toBe(0);
    expect(maxAbsDiff(patched.colbertVecs![0]!.data, base.colbertVecs![0]!.data)).toBe(0);
    expect(sparseMaxAbsDiff(patched.lexicalWeights![0]!, base.lexicalWeights![0]!)).toBe(0);
    cache.dispose();
  });

  it('watching q, k, v, scores or probabilities changes no output bit; a hook that replaces them does', async () => {
    const plain = await m3.encode(ids('zh_bge', 'readme_q1'), { returnDense: true, returnSparse: true, returnColbert: true });
    const sites = ['hook_q', 'hook_k', 'hook_v', 'hook_scores', 'hook_probs'] as const;
    for (const site of sites) {
      const name = `encoder.layer.0.attention.self.${site}` as ActivationName;
      const { output, cache } = await m3.runWithCache(ids('zh_bge', 'readme_q1'), { names: [name] });
      for (const b of [0, 1]) {
        expect(maxAbsDiff(output.denseVecs![b]!, plain.denseVecs![b]!), `${site}: dense ${b}`).toBe(0);
        expect(maxAbsDiff(output.colbertVecs![b]!.data, plain.colbertVecs![b]!.data), `${site}: colbert ${b}`).toBe(0);
        expect(sparseMaxAbsDiff(output.lexicalWeights![b]!, plain.lexicalWeights![b]!), `${site}: sparse ${b}`).toBe(0);
      }
      cache.dispose();
    }
    // a replacement equal in value but not the same tensor takes the path that uses what the hook returned
    const copy = await m3.runWithHooks(ids('zh_bge', 'readme_q1'), { 'encoder.layer.0.attention.self.hook_probs': (p) => tf.clone(p) });
    expect(maxAbsDiff(copy.denseVecs![0]!, plain.denseVecs![0]!)).toBeLessThan(1e-5);
    const sharper = await m3.runWithHooks(ids('zh_bge', 'readme_q1'), { 'encoder.layer.0.attention.self.hook_scores': (s) => tf.mul(s, 3) });
    expect(maxAbsDiff(sharper.denseVecs![0]!, plain.denseVecs![0]!)).toBeGreaterThan(1e-3);
  });

  it('activation patching: another input\'s last layer output carries its dense vector over', async () => {
    // readme_q1 and repeat_the have the same length (10 tokens), so their activations are interchangeable.
    const name: ActivationName = `encoder.layer.${last}.hook_out`;
    expect(cases.get('readme_q1')!.input_ids.length).toBe(cases.get('repeat_the')!.input_ids.length);
    const { output: donor, cache } = await m3.runWithCache(ids('repeat_the'), { names: [name] });
    const own = await m3.encode(ids('readme_q1'));
    const patched = await m3.runWithHooks(ids('readme_q1'), { [name]: () => tf.clone(cache.get(name)) });
    expect(maxAbsDiff(patched.denseVecs![0]!, donor.denseVecs![0]!)).toBeLessThan(1e-6);
    expect(maxAbsDiff(patched.denseVecs![0]!, own.denseVecs![0]!)).toBeGreaterThan(1e-2);
    cache.dispose();
  });

  it('zero-ablating one attention head changes the outputs, and only through that head', async () => {
    const c = m3.config;
    const d = c.hidden_size / c.num_attention_heads;
    const head = 1;
    const base = await m3.runWithCache(ids('zh_bge'), { names: ['encoder.layer.0.attention.self.hook_out'] });
    const ablated = await m3.runWithCache(ids('zh_bge'), { names: ['encoder.layer.0.attention.self.hook_out'] });
    ablated.cache.dispose();
    let seen: tf.Tensor | undefined;
    const out = await m3.runWithHooks(ids('zh_bge'), {
      'encoder.layer.0.attention.self.hook_v': (v) => {
        // v: [B, heads, T, d]; zero head `head`
        const mask = tf.tensor([...Array(c.num_attention_heads)].map((_, h) => (h === head ? 0 : 1)), [1, c.num_attention_heads, 1, 1]);
        return tf.mul(v, mask);
      },
      'encoder.layer.0.attention.self.hook_out': (ctx) => { seen = tf.keep(tf.clone(ctx)); },
    });
    const before = base.cache.get('encoder.layer.0.attention.self.hook_out').arraySync() as number[][][];
    const after = seen!.arraySync() as number[][][];
    const T = before[0]!.length;
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < c.hidden_size; j++) {
        const inHead = Math.floor(j / d) === head;
        if (inHead) expect(after[0]![t]![j]).toBe(0); // the head's context columns are zero
        else expect(after[0]![t]![j]).toBeCloseTo(before[0]![t]![j]!, 6); // the other heads are untouched
      }
    }
    expect(maxAbsDiff(out.denseVecs![0]!, base.output.denseVecs![0]!)).toBeGreaterThan(1e-3);
    seen!.dispose();
    base.cache.dispose();
  });

  it('replacing sparse_head.hook_out changes lexical weights exactly as specified', async () => {
    const c = cases.get('repeat_en')!;
    const w0 = await m3.runWithCache(ids('repeat_en'), { names: ['sparse_head.hook_out'] });
    const weights = (w0.cache.get('sparse_head.hook_out').arraySync() as number[][])[0]!;
    w0.cache.dispose();
    const pos = weights.findIndex((w, i) => i > 0 && w > 0); // a text token with a positive weight
    expect(pos).toBeGreaterThan(0);
    const scale = 3;
    const out = await m3.runWithHooks(ids('repeat_en'), {
      // weights [B, T]: scale position `pos`, zero everything else
      'sparse_head.hook_out': (w) => tf.mul(w, tf.mul(tf.oneHot([pos], w.shape[1]!), scale)),
    });
    const id = String(c.input_ids[pos]);
    expect(Object.keys(out.lexicalWeights![0]!)).toEqual([id]);
    expect(out.lexicalWeights![0]![id]).toBeCloseTo(scale * weights[pos]!, 6);
    // unedited, a token id's lexical weight is its largest weight over its occurrences
    const base = await m3.encode(ids('repeat_en'), { returnSparse: true });
    const occurrences = c.input_ids.map((x, i) => (String(x) === id ? weights[i]! : 0));
    expect(base.lexicalWeights![0]![id]).toBeCloseTo(Math.max(...occurrences), 6);
  });

  it('rejects unknown names with close matches, and replacements of the wrong shape', async () => {
    await expect(m3.runWithHooks(ids('readme_q1'), { ['encoder.layer.0.atention.self.hook_probs' as ActivationName]: () => undefined }))
      .rejects.toThrow(/unknown activation name 'encoder\.layer\.0\.atention\.self\.hook_probs'.*did you mean 'encoder\.layer\.0\.attention\.self\.hook_probs'/);
    await expect(m3.runWithCache(ids('readme_q1'), { names: [`encoder.layer.${last + 1}.hook_out` as ActivationName] }))
      .rejects.toThrow(/unknown activation name.*2 layers/);
    await expect(m3.runWithHooks(ids('readme_q1'), { 'dense_head.hook_out': (x) => tf.zeros([1, 3]) }))
      .rejects.toThrow(/hook on 'dense_head\.hook_out' returned shape \[1,3\], expected \[1,32\]/);
  });

  it('leaves no tensor behind across repeated hooked and cached runs', async () => {
    const run = async () => {
      await m3.runWithHooks(ids('readme_q1', 'zh_bge'), { 'encoder.layer.0.hook_out': (x) => tf.mul(x, 1) });
      (await m3.runWithCache(ids('readme_q1'), { names: (n) => n.endsWith('hook_probs') })).cache.dispose();
    };
    await run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await run();
    await expect(m3.runWithHooks(ids('readme_q1'), { 'dense_head.hook_out': () => tf.zeros([1, 3]) })).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('activation names', () => {
  it('cover every stage once, in forward order', () => {
    const names = allActivationNames(2);
    expect(new Set(names).size).toBe(names.length);
    expect(names.length).toBe(1 + 2 * LAYER_SITES.length + MODEL_SITES.length - 1);
    expect(names[0]).toBe('embeddings.hook_out');
    expect(names.at(-1)).toBe('colbert_head.hook_out');
  });

  it('a misspelt name literal fails to compile', () => {
    // test/hooks/names.typecheck.ts uses @ts-expect-error on misspelt names: tsc fails if they compile.
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    expect(() => execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'test', 'hooks', 'tsconfig.typecheck.json')], { encoding: 'utf8' })).not.toThrow();
  }, 120_000);
});
