/**
 * The sparse lab's failure paths (issue 18 item 8): every message names the file or flag at fault, no
 * temporary file survives a failure (a full disk) or a signal, and an unwritable output is refused
 * before the work.
 *
 * A full disk is real where a small tmpfs can be mounted (root in a container that allows it); elsewhere
 * those tests are skipped, and `withTempPath`'s clean-up is also checked with an injected ENOSPC error.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBeir } from '../../src/lab/beir.js';
import { saveHead } from '../../src/lab/head-io.js';
import { createTrainableHead } from '../../src/lab/heads/registry.js';
import { openHiddenCache, writeHiddenCache } from '../../src/lab/hidden-cache.js';
import { memoryHiddenSource } from '../../src/lab/hidden-source.js';
import { writeRunFile } from '../../src/lab/runfile.js';
import { trainHead, type TrainOptions } from '../../src/lab/train.js';
import { BgeM3 } from '../../src/m3.js';
import { checkWritable, withTempPath } from '../../src/temp-path.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { syntheticSet } from './synthetic.js';
import { runScriptInChild } from '../helpers/child.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const root = mkdtempSync(join(tmpdir(), 'lab-faults-'));

/** A tmpfs of `kb` KiB, or undefined when this machine cannot mount one. */
function smallDisk(kb: number): string | undefined {
  const at = mkdtempSync(join(root, 'disk-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kb}k`, 'tmpfs', at], { encoding: 'utf8' });
  return r.status === 0 ? at : undefined;
}
const disks: string[] = [];
const disk = smallDisk(16);
if (disk) disks.push(disk);
afterAll(() => {
  for (const d of disks) spawnSync('umount', [d]);
  rmSync(root, { recursive: true, force: true });
});

/** A run of `queries` × `hits` hits: ~40 bytes a line in a run file. */
function bigRun(queries: number, hits: number): Map<string, Array<{ id: string; score: number }>> {
  return new Map(Array.from({ length: queries }, (_, q) => [`q${q}`, Array.from({ length: hits }, (_, h) => ({ id: `doc${h}`, score: 1 / (h + 1) }))]));
}

describe('temporary files', () => {
  it('withTempPath removes the temporary folder on a failure and names the target in a system error', async () => {
    const target = join(root, 'out-folder');
    const tmp = `${target}.tmp`;
    const listeners = process.listenerCount('SIGINT');
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    await expect(withTempPath(tmp, target, async (t) => {
      mkdirSync(t);
      writeFileSync(join(t, 'a.bin'), 'partial');
      throw enospc;
    })).rejects.toThrow(`${target}: cannot write (ENOSPC: no space left on device)`);
    expect(existsSync(tmp)).toBe(false);
    // an error that names its file already is passed on as it is
    await expect(withTempPath(tmp, target, async () => { throw new Error(`${target}: bad value`); })).rejects.toThrow(`${target}: bad value`);
    expect(process.listenerCount('SIGINT')).toBe(listeners); // no signal handler is left installed
  });

  it.runIf(disk !== undefined)('a run file on a full disk: the error names the file, no temporary file is left', async () => {
    const out = join(disk!, 'run.trec');
    await expect(writeRunFile(out, bigRun(20, 100), 'tag')).rejects.toThrow(`${out}: cannot write (ENOSPC: no space left on device)`);
    expect(readdirSync(disk!)).toEqual([]);
  });

  it.runIf(disk !== undefined)('training on a full disk: checkpoint and head writes name their path, no temporary folder is left', async () => {
    const m3 = await BgeM3.load(checkpointDir('tiny-m3'));
    try {
      const set = syntheticSet({ docs: 12, trainQueries: 8, seed: 5, vocab: m3.config.vocab_size });
      const source = await memoryHiddenSource(m3, set.texts);
      const head = createTrainableHead('m3', m3);
      writeFileSync(join(disk!, 'filler'), Buffer.alloc(15 * 1024)); // leaves less than a page
      const ckpt = join(disk!, 'out.train');
      const opts: TrainOptions = { epochs: 1, batchSize: 4, learningRate: 0.01, seed: 1, temperature: 0.1, checkpointDir: ckpt };
      await expect(trainHead(head, set.train, source, opts)).rejects.toThrow(/out\.train\/epoch-0001: cannot write \(ENOSPC: no space left on device\)/);
      expect(readdirSync(ckpt)).toEqual([]);
      await expect(saveHead(head, join(disk!, 'head'))).rejects.toThrow(`${join(disk!, 'head')}: cannot write (ENOSPC: no space left on device)`);
      expect(readdirSync(disk!).sort()).toEqual(['filler', 'out.train']);
      head.dispose();
      rmSync(join(disk!, 'filler'));
      rmSync(ckpt, { recursive: true });
    } finally {
      m3.dispose();
    }
  });

  it('SIGINT while a run file is written leaves no temporary file, and the process still dies of the signal', async () => {
    const dir = mkdtempSync(join(root, 'sigint-'));
    const out = join(dir, 'run.trec');
    // a child writes a ~15 MB run and sends itself SIGINT as soon as the temporary file exists
    const script = `
      import { existsSync, readdirSync } from 'node:fs';
      const { writeRunFile } = await import(${JSON.stringify(join(ROOT, 'dist', 'lab', 'runfile.js'))});
      const run = new Map(Array.from({ length: 400 }, (_, q) => ['q' + q, Array.from({ length: 1000 }, (_, h) => ({ id: 'doc' + h, score: 1 / (h + 1) }))]));
      const poll = setInterval(() => {
        if (readdirSync(${JSON.stringify(dir)}).some((n) => n.endsWith('.tmp'))) { clearInterval(poll); process.kill(process.pid, 'SIGINT'); }
      }, 0);
      await writeRunFile(${JSON.stringify(out)}, run, 'tag');
      clearInterval(poll);
      console.log('finished before the signal');
    `;
    const { stdout, signal } = await runScriptInChild(script);
    expect(stdout).toBe('');
    expect(signal).toBe('SIGINT');
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('messages that name the file or flag', () => {
  it('a BEIR file that is a folder is named (not a bare EISDIR)', async () => {
    const set = join(root, 'set-with-folder');
    mkdirSync(join(set, 'qrels'), { recursive: true });
    mkdirSync(join(set, 'corpus.jsonl'));
    await expect(readBeir(set, 'test')).rejects.toThrow(`${join(set, 'corpus.jsonl')}: is a folder, expected a file`);
  });

  it('a cache manifest without "model" is refused naming the file and field', async () => {
    const m3 = await BgeM3.load(checkpointDir('tiny-m3'));
    try {
      const dir = join(root, 'cache');
      await writeHiddenCache(m3, [{ id: 'a', text: 'one text' }, { id: 'b', text: 'two texts here' }], dir);
      const path = join(dir, 'manifest.json');
      const { model: _, ...rest } = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      await writeFile(path, JSON.stringify(rest));
      await expect(openHiddenCache(dir)).rejects.toThrow(`${path}: "model" is missing`);
    } finally {
      m3.dispose();
    }
  });

  describe('a training checkpoint that is damaged', () => {
    let m3: BgeM3;
    const opts = (dir: string): TrainOptions => ({ epochs: 2, batchSize: 4, learningRate: 0.01, seed: 1, temperature: 0.1, checkpointDir: dir });
    let run: (dir: string, resume: boolean) => Promise<unknown>;
    beforeAll(async () => {
      m3 = await BgeM3.load(checkpointDir('tiny-m3'));
      const set = syntheticSet({ docs: 12, trainQueries: 8, seed: 5, vocab: m3.config.vocab_size });
      const source = await memoryHiddenSource(m3, set.texts);
      run = async (dir, resume) => {
        const head = createTrainableHead('m3', m3);
        try {
          return await trainHead(head, set.train, source, { ...opts(dir), resume, stopAfterEpochs: resume ? undefined : 1 });
        } finally {
          head.dispose();
        }
      };
    });
    afterAll(() => m3.dispose());

    it('malformed state.json is named', async () => {
      const dir = join(root, 'ckpt-json');
      await run(dir, false);
      await writeFile(join(dir, 'epoch-0001', 'state.json'), '{"epoch": 1,');
      await expect(run(dir, true)).rejects.toThrow(`${join(dir, 'epoch-0001', 'state.json')}: malformed`);
    });

    it('an optimizer state missing a tensor is named (not a tfjs shape error)', async () => {
      const dir = join(root, 'ckpt-missing');
      await run(dir, false);
      const { openSafetensors, writeSafetensors } = await import('../../src/weights/safetensors.js');
      const path = join(dir, 'epoch-0001', 'optimizer.safetensors');
      const f = await openSafetensors(path);
      const names = f.keys().sort();
      const kept = await Promise.all(names.slice(0, -1).map(async (n) => ({ n, t: await f.readFloat32(n) })));
      await f.close();
      rmSync(path);
      await writeSafetensors(path, kept.map(({ n, t }) => ({ name: n, dtype: 'F32' as const, shape: [...t.shape], bytes: () => new Uint8Array(t.data.buffer) })));
      await expect(run(dir, true)).rejects.toThrow(new RegExp(`${join(dir, 'epoch-0001')}/optimizer\\.safetensors: no tensor '${names.at(-1)}'`));
    });
  });
});

describe('CLI: refusals before the work', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, 'sparse', ...args], { encoding: 'utf8' });
  const file = join(root, 'a-file');
  beforeAll(() => writeFileSync(file, 'x'));

  it('eval --run and train --out into an unwritable place fail at once, naming the flag and the place', () => {
    const set = join(root, 'unused-set'); // never read: the output is checked first
    const r = cli('eval', '--model', checkpointDir('tiny-m3'), '--beir', set, '--run', join(file, 'run.trec'));
    expect(r.stderr).toMatch(/--run .*a-file\/run\.trec: .*a-file is not a folder/);
    expect(r.status).toBe(1);
    const d = cli('eval', '--model', checkpointDir('tiny-m3'), '--beir', set, '--run', root, '--force');
    expect(d.stderr).toMatch(/--run .*: is a folder, expected a file name/);
    const t = cli('train', '--model', checkpointDir('tiny-m3'), '--beir', set, '--head', 'm3', '--out', join(file, 'head'));
    expect(t.stderr).toMatch(/--out .*a-file\/head: .*a-file is not a folder/);
    expect(t.status).toBe(1);
    expect(() => checkWritable(join(root, 'new', 'deeper', 'run.trec'), '--run')).not.toThrow(); // folders to be made
  });

  it('--weights errors read as one sentence', () => {
    const r = cli('eval', '--model', checkpointDir('tiny-m3'), '--beir', root, '--mode', 'hybrid', '--weights', '1,-1,0');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^bge-m3 sparse eval: --weights \[1,-1,0\]: weights must not be negative/);
    expect(r.stderr).not.toMatch(/must be --weights/);
  });
});
