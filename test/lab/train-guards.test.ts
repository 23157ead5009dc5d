/**
 * `bge-m3 sparse train` as a careless or hostile user runs it (issue 18 items 3, 5, 6):
 * - a diverging run (`--lr 1e39`, or 1e7 whose first step makes weights of ~1e7) exits 1 naming the
 *   epoch, step and loss, and writes no head and no checkpoint of that epoch;
 * - `--force` refuses a folder that is not a head folder written by this command (nothing deleted);
 * - `--resume` refuses a checkpoint made with another model, data set, learning rate, batch size or
 *   seed (naming them), a tampered epoch, and a corrupt (NaN) checkpoint as corrupt; then resumes
 *   the untouched checkpoint to the numbers of an uninterrupted run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { run } from '../../src/cli/sparse-train.js';
import { createTrainableHead } from '../../src/lab/heads/registry.js';
import { memoryHiddenSource } from '../../src/lab/hidden-source.js';
import { TrainingDivergedError, trainHead } from '../../src/lab/train.js';
import { BgeM3 } from '../../src/m3.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { makeSyntheticBeir } from './beir-fixture.js';
import { syntheticSet } from './synthetic.js';

const MODEL = checkpointDir('tiny-m3');
/** Same shapes and tokenizer as tiny-m3, other weights: "another model" for --resume. */
const OTHER_MODEL = checkpointDir('sharp-m3');

function sink() {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
  return { stream, get text() { return text; } };
}

async function train(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = sink();
  const e = sink();
  const code = await run(args, { stdout: o.stream, stderr: e.stream });
  return { code, out: o.text, err: e.text };
}

describe('sparse train: divergence, --force, --resume checks (tiny-m3)', () => {
  let tmp: string;
  let beir: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'bge-m3-train-guards-'));
    const m3 = await BgeM3.load(MODEL);
    beir = join(tmp, 'beir');
    makeSyntheticBeir(beir, m3.tokenizer, { topics: 10, noise: 6 }); // 20 training pairs (grades 2 and 1)
    m3.dispose();
  });
  afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

  const base = (beirDir = beir) => ['--model', MODEL, '--beir', beirDir, '--split', 'test', '--head', 'm3', '--batch-size', '6', '--lr', '0.01', '--seed', '2', '--temperature', '0.1'];

  it('a diverging run exits 1 naming epoch, step and loss, and writes no head (--lr 1e39: Infinity; --lr 1e7: too large)', async () => {
    for (const [lr, what] of [['1e39', /the head's tensor 'sparse_linear\.(weight|bias)' has \d+ non-finite values/], ['1e7', /the head's tensor 'sparse_linear\.(weight|bias)' has \d+ values beyond ±1e\+6/]] as const) {
      const out = join(tmp, `diverged-${lr}`);
      const r = await train([...base().filter((x, i, a) => a[i - 1] !== '--lr' && x !== '--lr'), '--lr', lr, '--out', out, '--epochs', '2']);
      console.log(`--lr ${lr}: exit ${r.code}: ${r.err.trim()}`);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/training diverged at epoch 1, step 1 of 4: the loss was \d+\.\d{4} before the update; after the update/);
      expect(r.err).toMatch(what);
      expect(r.err).toContain(`No head was written to ${out}. Try a lower --lr (it is ${Number(lr)};`);
      expect(r.out).toBe('');
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(tmp).filter((n) => n.startsWith(`.diverged-${lr}`))).toEqual([]);
      const ck = join(tmp, `diverged-${lr}.train`);
      expect(existsSync(ck) ? readdirSync(ck) : []).toEqual([]);
    }
  });

  it('trainHead throws TrainingDivergedError at the step that diverged, writes no checkpoint, leaks no tensor', async () => {
    const m3 = await BgeM3.load(MODEL);
    const set = syntheticSet({ docs: 12, trainQueries: 12, seed: 5, vocab: m3.config.vocab_size });
    const source = await memoryHiddenSource(m3, set.texts);
    const head = createTrainableHead('m3', m3);
    const before = tf.memory().numTensors;
    const dir = join(tmp, 'lib-ckpt');
    let err: unknown;
    try {
      // One step per epoch, lr 1e37: the update leaves finite weights of ~1e37 (beyond MAX_HEAD_WEIGHT).
      await trainHead(head, set.train, source, { epochs: 2, batchSize: 12, learningRate: 1e37, checkpointDir: dir });
    } catch (e) { err = e; }
    expect(err).toBeInstanceOf(TrainingDivergedError);
    const d = err as TrainingDivergedError;
    expect([d.epoch, d.step, d.steps]).toEqual([1, 1, 1]);
    expect(Number.isFinite(d.loss)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    expect(existsSync(dir)).toBe(false);
    head.dispose();
    m3.dispose();
  });

  it('--force refuses a folder that is not a head folder of this command: nothing deleted', async () => {
    const project = join(tmp, 'project');
    mkdirSync(join(project, 'src'), { recursive: true });
    writeFileSync(join(project, 'notes.txt'), 'my notes\n');
    writeFileSync(join(project, 'src', 'main.c'), 'int main(void) { return 0; }\n');
    const r = await train([...base(), '--out', project, '--epochs', '1', '--force']);
    console.log(`--force on a project folder: exit ${r.code}: ${r.err.trim()}`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--force: .*project is not a head folder written by bge-m3 sparse train \(no head\.json; it holds .*"notes\.txt".*\); refusing to replace it \(nothing was deleted\)/);
    expect(readFileSync(join(project, 'notes.txt'), 'utf8')).toBe('my notes\n');
    expect(existsSync(join(project, 'src', 'main.c'))).toBe(true);
    // A head folder with a file of the user's in it, and a plain file, are refused too.
    const head = join(tmp, 'head-plus');
    expect((await train([...base(), '--out', head, '--epochs', '1'])).code).toBe(0);
    writeFileSync(join(head, 'mine.txt'), 'keep me\n');
    const r2 = await train([...base(), '--out', head, '--epochs', '1', '--force']);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/head-plus holds files a head folder does not \("mine\.txt"\)/);
    expect(readFileSync(join(head, 'mine.txt'), 'utf8')).toBe('keep me\n');
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'data\n');
    const r3 = await train([...base(), '--out', file, '--epochs', '1', '--force']);
    expect(r3.code).toBe(1);
    expect(r3.err).toMatch(/a-file is not a head folder \(it is a file\)/);
    expect(readFileSync(file, 'utf8')).toBe('data\n');
    // A head folder of ours is replaced, leaving no temporary folder beside it.
    await rm(join(head, 'mine.txt'));
    const r4 = await train([...base(), '--out', head, '--epochs', '1', '--force', '--seed', '3']);
    expect(r4.code).toBe(0);
    expect(JSON.parse(readFileSync(join(head, 'training.json'), 'utf8')).options.seed).toBe(3);
    expect(readdirSync(tmp).filter((n) => n.startsWith('.head-plus'))).toEqual([]);
  });

  it('--resume refuses other settings (naming them), tampered epochs and a corrupt checkpoint; then resumes as an unbroken run', async () => {
    // The reference: 3 epochs in one go.
    const full = await train([...base(), '--out', join(tmp, 'full'), '--epochs', '3']);
    expect(full.code).toBe(0);
    // A run stopped after epoch 2 (its checkpoint kept, no head written).
    const out = join(tmp, 'resumed');
    const ckDir = join(tmp, 'resumed.train');
    expect((await train([...base(), '--out', out, '--epochs', '2'])).code).toBe(0);
    await rm(out, { recursive: true });
    const pristine = join(tmp, 'pristine');
    await cp(ckDir, pristine, { recursive: true });
    // Without --resume or --force, a new run would replace the checkpoint after its first epoch: refused.
    let r = await train([...base(), '--out', out, '--epochs', '3']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/resumed\.train\/epoch-0002 holds the checkpoint of an earlier run \(after epoch 2\): pass --resume to continue it, or --force/);
    expect(readdirSync(ckDir)).toEqual(['epoch-0002']);
    const resume = (args: string[]) => train([...args, '--out', out, '--epochs', '3', '--resume']);
    const swap = (flag: string, value: string) => base().map((x, i, a) => (a[i - 1] === flag ? value : x));

    const changed = join(tmp, 'beir-changed');
    await cp(beir, changed, { recursive: true });
    const corpus = readFileSync(join(changed, 'corpus.jsonl'), 'utf8').split('\n');
    const i = corpus.findIndex((l) => l.includes('"t0-a"'));
    corpus[i] = corpus[i]!.replace(/"text": ?"/, '"text":"changed ');
    writeFileSync(join(changed, 'corpus.jsonl'), corpus.join('\n'));
    for (const [args, msg] of [
      [swap('--lr', '0.02'), /--lr: 0\.01 in the checkpoint, 0\.02 now/],
      [swap('--seed', '5'), /--seed: 2 in the checkpoint, 5 now/],
      [swap('--batch-size', '4'), /--batch-size: 6 in the checkpoint, 4 now/],
      [swap('--model', OTHER_MODEL), /--model \(its weights\): "[0-9a-f]+" in the checkpoint, "[0-9a-f]+" now/],
      [base(changed), /the texts \(--beir corpus\.jsonl, queries\.jsonl\): "[0-9a-f]+" in the checkpoint/],
      [[...base(), '--flops-weight', '0.01'], /--flops-query: 0 in the checkpoint, 0\.01 now\n {2}--flops-document: 0 in the checkpoint, 0\.01 now/],
    ] as const) {
      const r = await resume([...args]);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(/--resume: .*resumed\.train\/epoch-0002 was made with other settings:/);
      expect(r.err).toMatch(msg);
      expect(existsSync(out)).toBe(false);
    }
    console.log(`another model: ${(await resume(swap('--model', OTHER_MODEL))).err.trim()}`);

    const state = join(ckDir, 'epoch-0002', 'state.json');
    const edit = (patch: (s: Record<string, unknown>) => void) => {
      const s = JSON.parse(readFileSync(join(pristine, 'epoch-0002', 'state.json'), 'utf8'));
      patch(s);
      writeFileSync(state, JSON.stringify(s));
    };
    edit((s) => { s.epoch = 1e9; });
    r = await resume(base());
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/state\.json: "epoch" is 1000000000, its folder says 2: the checkpoint is corrupt/);
    edit((s) => { s.epoch = 1.5; });
    expect((await resume(base())).err).toMatch(/"epoch" is 1\.5, its folder says 2/);
    // An epoch that agrees with a renamed folder but not with the optimizer's step count.
    edit((s) => { s.epoch = 3; s.curve = [...(s.curve as unknown[]), { ...(s.curve as object[])[1], epoch: 3 }]; });
    await rename(join(ckDir, 'epoch-0002'), join(ckDir, 'epoch-0003'));
    r = await train([...base(), '--out', out, '--epochs', '4', '--resume']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/optimizer\.safetensors: the step count is 8, but 3 epochs of 4 steps make 12: the checkpoint is corrupt/);
    r = await resume(base()); // --epochs 3
    expect(r.code).toBe(1);
    await rm(ckDir, { recursive: true });

    // A NaN in the saved head: corrupt, not "lower the learning rate".
    await cp(pristine, ckDir, { recursive: true });
    const headFile = join(ckDir, 'epoch-0002', 'head.safetensors');
    const bytes = readFileSync(headFile);
    bytes.writeFloatLE(NaN, bytes.length - 4); // the last value of the last tensor
    writeFileSync(headFile, bytes);
    r = await resume(base());
    console.log(`NaN checkpoint: ${r.err.trim()}`);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/head\.safetensors: tensor 'var\.\d' has 1 non-finite values \(first: NaN at flat index \d+\): the checkpoint is corrupt/);
    expect(r.err).not.toMatch(/learning rate|--lr/);
    await rm(ckDir, { recursive: true });

    // Absurd epoch counts are refused (Adam's step count is saved as a float32).
    r = await train([...base(), '--out', out, '--resume', '--epochs', '100000000']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/epochs × steps per epoch must stay below 2\^24/);

    // The untouched checkpoint resumes to the unbroken run's numbers.
    await cp(pristine, ckDir, { recursive: true });
    r = await resume(base());
    expect(r.code, r.err).toBe(0);
    const a = JSON.parse(full.out);
    const b = JSON.parse(r.out);
    expect(b.resumedAfter).toBe(2);
    expect(b.curve).toEqual(a.curve);
    expect(readFileSync(join(out, 'sparse_linear.safetensors'))).toEqual(readFileSync(join(tmp, 'full', 'sparse_linear.safetensors')));
  });
});
