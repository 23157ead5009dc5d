/**
 * The sparse lens: every row is the head on that hidden state, checked against the float64
 * reference activations (sharp-m3, case readme_q2): row r = relu(W_lex·hidden_states[r] + b) from
 * the reference's `embeddings.hook_out` / `encoder.layer.<i>.hook_out`, and the last row is the
 * reference's `sparse_head.hook_out`. The CLI prints the aligned table, writes the heatmap page
 * atomically and never replaces it without --force.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { BgeM3 } from '../../src/m3.js';
import { createTrainableHead } from '../../src/lab/heads/registry.js';
import { formatLensTable, sparseLens } from '../../src/lab/lens.js';
import { run } from '../../src/cli/sparse-lens.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases, Reference } from '../helpers/reference.js';

function sink() {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
  return { stream, get text() { return text; } };
}

describe('sparse lens (sharp-m3)', () => {
  let m3: BgeM3;
  let ref: Reference;
  let tmp: string;
  const kase = loadCases().find((c) => c.id === 'readme_q2')!;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('sharp-m3'));
    ref = await Reference.open('sharp-m3');
    tmp = await mkdtemp(join(tmpdir(), 'bge-m3-lens-'));
  });
  afterAll(async () => {
    m3.dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  it('rows equal the m3 head on the reference hidden states of every layer', async () => {
    const head = createTrainableHead('m3', m3);
    const before = tf.memory().numTensors;
    const lens = await sparseLens(m3, head, kase.text);
    expect(tf.memory().numTensors).toBe(before);
    head.dispose();
    expect(lens.inputIds).toEqual(kase.input_ids);
    expect(lens.tokens).toEqual(kase.tokens);
    expect(lens.layers).toEqual(['embeddings.hook_out', 'encoder.layer.0.hook_out', 'encoder.layer.1.hook_out']);
    const W = await m3.params.sparse_linear.weight.data();
    const b = (await m3.params.sparse_linear.bias.data())[0]!;
    const H = m3.config.hidden_size;
    let err = 0;
    for (const [r, name] of lens.layers.entries()) {
      const h = (await ref.tensor(kase.id, name)).data; // [T, H]
      kase.input_ids.forEach((_, t) => {
        let s = b;
        for (let i = 0; i < H; i++) s += W[i]! * h[t * H + i]!;
        err = Math.max(err, Math.abs(Math.max(0, s) - lens.weights[r]![t]!));
      });
    }
    const last = (await ref.tensor(kase.id, 'sparse_head.hook_out')).data;
    const errLast = Math.max(...Array.from(last, (w, t) => Math.abs(w - lens.weights[2]![t]!)));
    console.log(`lens vs float64 reference: max abs err ${err.toExponential(2)} over ${lens.layers.length} layers; last row vs sparse_head.hook_out ${errLast.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    expect(errLast).toBeLessThan(1e-4);
    const table = formatLensTable(lens).split('\n');
    expect(table[0]).toMatch(/^hidden state\s+<s>\s+▁De\s+fin\s+ation\s+▁of\s+▁B\s+M\s+25\s+<\/s>$/);
    expect(table[3]).toMatch(/^layer 1 /);
    // Aligned: every column ends at the same offset in every row.
    const ends = (line: string) => [...line.matchAll(/\S+/g)].map((m) => m.index! + m[0].length);
    expect(ends(table[1]!.replace('embeddings', 'x'.repeat(10))).slice(1)).toEqual(ends(table[0]!).slice(2));
  });

  it('CLI: prints the table, writes the heatmap page, refuses to replace it without --force', async () => {
    const out = sink();
    const err = sink();
    const html = join(tmp, 'lens.html');
    const args = ['--model', checkpointDir('sharp-m3'), '--head', 'm3-log1p', '--html', html, kase.text];
    expect(await run(args, { stdout: out.stream, stderr: err.stream })).toBe(0);
    expect(out.text.split('\n')[0]).toMatch(/^hidden state\s+<s>\s+▁De/);
    const page = await readFile(html, 'utf8');
    expect(page).toContain('<title>sparse lens: m3-log1p</title>');
    const data = JSON.parse(/<script type="application\/json" id="lens-data">(.*)<\/script>/.exec(page)![1]!);
    expect(data.tokens).toEqual(kase.tokens);
    await writeFile(html, 'mine');
    const err2 = sink();
    expect(await run(args, { stdout: sink().stream, stderr: err2.stream })).toBe(1);
    expect(err2.text).toMatch(/lens\.html exists; pass --force to replace it/);
    expect(await readFile(html, 'utf8')).toBe('mine');
    expect(await run([...args.slice(0, -1), '--force', kase.text], { stdout: sink().stream, stderr: sink().stream })).toBe(0);
    expect(await readFile(html, 'utf8')).toContain('lens-data');
    const err3 = sink();
    expect(await run(['--model', checkpointDir('sharp-m3'), '--head', 'bm25', 'x'], { stdout: sink().stream, stderr: err3.stream })).toBe(2);
    expect(err3.text).toMatch(/--head bm25 reads token ids only/);
    const err4 = sink();
    expect(await run(['--model', checkpointDir('sharp-m3')], { stdout: sink().stream, stderr: err4.stream })).toBe(2);
    expect(err4.text).toMatch(/give exactly one text/);
  });
});
