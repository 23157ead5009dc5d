/**
 * `bge-m3 sparse eval --head DIR` with a folder saved by the trainer (src/lab/head-io.ts, from the
 * heads part of the lab; skipped in a build without it): the m3 head saved at its starting point
 * evaluates as `--head m3`.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/sparse-eval.js';
import { BgeM3 } from '../../src/m3.js';
import { M3Tokenizer } from '../../src/tokenizer.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { makeSyntheticBeir } from './beir-fixture.js';

const LAB = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'lab');
const haveHeadIo = existsSync(join(LAB, 'head-io.ts'));
const root = mkdtempSync(join(tmpdir(), 'eval-head-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function evalJson(argv: string[]): Promise<Record<string, number>> {
  const out = new PassThrough();
  const err = new PassThrough();
  let text = '';
  let errors = '';
  out.on('data', (d) => { text += d; });
  err.on('data', (d) => { errors += d; });
  const code = await run([...argv, '--json'], { stdout: out, stderr: err });
  expect(errors).toBe('');
  expect(code).toBe(0);
  return JSON.parse(text);
}

describe.skipIf(!haveHeadIo)('sparse eval --head DIR (a trained head folder)', () => {
  it('an m3 head saved at its starting point scores as the model\'s own head', async () => {
    const model = checkpointDir('tiny-m3');
    const set = join(root, 'set');
    makeSyntheticBeir(set, await M3Tokenizer.fromDir(model));
    const m3 = await BgeM3.load(model);
    const headIo = join(LAB, 'head-io.js'); // a path in a variable: this file compiles without the module
    const { saveHead } = (await import(headIo)) as { saveHead: (h: unknown, dir: string) => Promise<void> };
    const { createTrainableHead } = (await import(join(LAB, 'heads', 'registry.js'))) as { createTrainableHead: (n: string, m: BgeM3) => { dispose(): void } };
    const head = createTrainableHead('m3', m3);
    await saveHead(head, join(root, 'head'));
    head.dispose();
    m3.dispose();
    const own = await evalJson(['--model', model, '--beir', set, '--head', 'm3']);
    const saved = await evalJson(['--model', model, '--beir', set, '--head', join(root, 'head')]);
    for (const key of ['ndcg@10', 'mrr@10', 'recall@100', 'map']) {
      console.log(`${key}: --head m3 ${own[key]}, --head DIR ${saved[key]}`);
      expect(saved[key]).toBeCloseTo(own[key]!, 6);
    }
  });
});
