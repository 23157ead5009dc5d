/**
 * Repo ids resolved through a Hugging Face cache laid out as huggingface_hub lays it out (built here in a
 * temp dir from the tiny-m3 fixture: blobs named by hash, snapshot files as relative symlinks into blobs,
 * refs/<branch> holding the commit), the cache variables' precedence, and the errors' listings.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { getHFHubCachePath } from '@huggingface/hub';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run as inspectCli } from '../../src/cli/inspect.js';
import { hubCacheDir, ModelNotFoundError, parseRepoId, resolveModel } from '../../src/hub/cache.js';
import { BgeM3 } from '../../src/m3.js';
import { checkpointDir } from '../helpers/fixtures.js';

const TINY = checkpointDir('tiny-m3');
const MAIN = 'a'.repeat(40);
const V1 = 'b'.repeat(40);
const CACHE_VARS = ['HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HOME', 'XDG_CACHE_HOME', 'HOME'] as const;
const saved = Object.fromEntries(CACHE_VARS.map((k) => [k, process.env[k]]));

let tmp: string;

/** Writes `<cache>/models--<owner>--<name>` with the tiny-m3 files at commit `commit`, refs/<ref> → commit. */
function makeCache(cache: string, repo: string, commit: string, refs: string[] = ['main'], skip: string[] = []): string {
  const repoDir = join(cache, `models--${repo.replace('/', '--')}`);
  const snap = join(repoDir, 'snapshots', commit);
  mkdirSync(join(repoDir, 'blobs'), { recursive: true });
  mkdirSync(snap, { recursive: true });
  for (const name of readdirSync(TINY)) {
    if (skip.includes(name)) continue;
    const bytes = readFileSync(join(TINY, name));
    const blob = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(repoDir, 'blobs', blob), bytes);
    symlinkSync(join('..', '..', 'blobs', blob), join(snap, name)); // relative, as huggingface_hub makes them
  }
  for (const ref of refs) {
    mkdirSync(join(repoDir, 'refs'), { recursive: true });
    writeFileSync(join(repoDir, 'refs', ref), commit); // no trailing newline, as huggingface_hub writes it
  }
  return snap;
}

function setEnv(vars: Partial<Record<(typeof CACHE_VARS)[number], string>>): void {
  for (const k of CACHE_VARS) {
    if (k === 'HOME') continue;
    delete process.env[k];
  }
  Object.assign(process.env, vars);
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'bge-m3-hfcache-'));
});
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('hubCacheDir', () => {
  it('follows huggingface_hub: HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > HF_HOME/hub > XDG_CACHE_HOME/huggingface/hub > ~/.cache/huggingface/hub', () => {
    const cases: Array<[Record<string, string>, string, string]> = [
      [{ HF_HUB_CACHE: '/a/hub', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c', XDG_CACHE_HOME: '/d' }, '/a/hub', 'HF_HUB_CACHE'],
      [{ HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c', XDG_CACHE_HOME: '/d' }, '/b', 'HUGGINGFACE_HUB_CACHE'],
      [{ HF_HOME: '/c', XDG_CACHE_HOME: '/d' }, '/c/hub', 'HF_HOME'],
      [{ XDG_CACHE_HOME: '/d' }, '/d/huggingface/hub', 'XDG_CACHE_HOME'],
    ];
    for (const [env, dir, source] of cases) {
      expect(hubCacheDir(env)).toEqual({ dir, source });
      // The JS library computes the same directory from the same variables.
      setEnv(env);
      expect(getHFHubCachePath()).toBe(dir);
    }
    process.env['HOME'] = join(tmp, 'home');
    expect(hubCacheDir({}).dir).toBe(join(tmp, 'home', '.cache', 'huggingface', 'hub'));
    expect(hubCacheDir({ HF_HOME: '~/hf' }).dir).toBe(join(tmp, 'home', 'hf', 'hub'));
  });
});

describe('parseRepoId', () => {
  it('accepts owner/name[@revision] and refuses paths', () => {
    expect(parseRepoId('BAAI/bge-m3')).toEqual({ repo: 'BAAI/bge-m3' });
    expect(parseRepoId('BAAI/bge-m3@v1.0')).toEqual({ repo: 'BAAI/bge-m3', revision: 'v1.0' });
    expect(parseRepoId('BAAI/bge-m3@refs/pr/3')).toEqual({ repo: 'BAAI/bge-m3', revision: 'refs/pr/3' });
    for (const bad of ['./bge-m3', '/abs/dir', 'a/b/c', 'bge-m3', 'a--b/c', 'a/..', 'a/b@', '../x']) expect(parseRepoId(bad), bad).toBeUndefined();
  });
});

describe('resolveModel', () => {
  it('finds refs/main → snapshots/<commit>, whose files lead into blobs/', () => {
    const cache = join(tmp, 'c1');
    const snap = makeCache(cache, 'BAAI/bge-m3', MAIN);
    const r = resolveModel('BAAI/bge-m3', { env: { HF_HUB_CACHE: cache } });
    expect(r).toEqual({ dir: snap, hub: { repo: 'BAAI/bge-m3', revision: 'main', commit: MAIN, cache } });
    expect(realpathSync(join(r.dir, 'config.json'))).toMatch(/\/blobs\/[0-9a-f]{64}$/);
  });

  it('takes @revision, a revision option and a bare commit hash', () => {
    const cache = join(tmp, 'c2');
    makeCache(cache, 'BAAI/bge-m3', MAIN);
    const v1 = makeCache(cache, 'BAAI/bge-m3', V1, ['v1']);
    const env = { HF_HOME: join(tmp, 'c2-home') };
    mkdirSync(env.HF_HOME, { recursive: true });
    symlinkSync(cache, join(env.HF_HOME, 'hub'));
    expect(resolveModel('BAAI/bge-m3@v1', { env }).dir).toBe(join(env.HF_HOME, 'hub', 'models--BAAI--bge-m3', 'snapshots', V1));
    expect(resolveModel('BAAI/bge-m3', { env: { HF_HUB_CACHE: cache }, revision: 'v1' }).dir).toBe(v1);
    expect(resolveModel(`BAAI/bge-m3@${V1}`, { env: { HF_HUB_CACHE: cache } }).hub?.commit).toBe(V1);
    expect(errorOf(() => resolveModel('BAAI/bge-m3@v1', { env: { HF_HUB_CACHE: cache }, revision: 'main' })).message).toMatch(/names revision "v1" but the revision option says "main"/);
  });

  it('an existing directory wins over a repo id of the same spelling', () => {
    const cwd = process.cwd();
    const work = join(tmp, 'cwd');
    mkdirSync(join(work, 'BAAI', 'bge-m3'), { recursive: true });
    process.chdir(work);
    try {
      expect(resolveModel('BAAI/bge-m3', { env: { HF_HUB_CACHE: join(tmp, 'c1') } })).toEqual({ dir: 'BAAI/bge-m3' });
    } finally {
      process.chdir(cwd);
    }
  });

  it('lists every place it looked and why each failed', () => {
    const cache = join(tmp, 'c3');
    const missingCache = errorOf(() => resolveModel('BAAI/bge-m3', { env: { HF_HUB_CACHE: cache } }));
    expect(missingCache).toBeInstanceOf(ModelNotFoundError);
    expect(missingCache.message).toContain(`${resolve('BAAI/bge-m3')}: no such directory`);
    expect(missingCache.message).toContain(`Hugging Face cache ${cache} (HF_HUB_CACHE): no models--BAAI--bge-m3 folder (the cache directory does not exist)`);
    expect(missingCache.message).toContain('bge-m3 download --repo BAAI/bge-m3');
    expect((missingCache as ModelNotFoundError).looked).toHaveLength(2);

    makeCache(cache, 'BAAI/bge-m3', MAIN, []);
    expect(errorOf(() => resolveModel('BAAI/bge-m3', { env: { HF_HUB_CACHE: cache } })).message).toMatch(
      /no refs\/main file and no snapshots\/main folder \(refs: none; snapshots: aaaaaaaaaaaa\)/,
    );

    mkdirSync(join(cache, 'models--BAAI--bge-m3', 'refs'));
    writeFileSync(join(cache, 'models--BAAI--bge-m3', 'refs', 'main'), V1);
    expect(errorOf(() => resolveModel('BAAI/bge-m3', { env: { HF_HUB_CACHE: cache } })).message).toContain(`refs/main points to ${V1}, but snapshots/${V1} is missing`);

    writeFileSync(join(cache, 'models--BAAI--bge-m3', 'refs', 'main'), 'not a hash\n');
    expect(errorOf(() => resolveModel('BAAI/bge-m3', { env: { HF_HUB_CACHE: cache } })).message).toMatch(/refs\/main: does not hold a commit hash \(got "not a hash"\)/);

    writeFileSync(join(cache, 'models--BAAI--bge-m3', 'refs', 'main'), `${MAIN}\n`);
    const blobs = join(cache, 'models--BAAI--bge-m3', 'blobs');
    const weights = realpathSync(join(cache, 'models--BAAI--bge-m3', 'snapshots', MAIN, 'model.safetensors'));
    unlinkSync(weights);
    expect(readdirSync(blobs).length).toBeGreaterThan(0);
    expect(errorOf(() => resolveModel('BAAI/bge-m3', { env: { HF_HUB_CACHE: cache } })).message).toMatch(/model\.safetensors is a symlink to missing blobs \(incomplete download\)/);

    expect(errorOf(() => resolveModel('BAAI/bge-m3@../../x', { env: { HF_HUB_CACHE: cache } })).message).toContain('revision "../../x" is not a branch, tag or commit name');
    const notRepo = errorOf(() => resolveModel('/no/such/snapshot'));
    expect(notRepo.message).toContain('/no/such/snapshot: no such directory');
    expect(notRepo.message).toContain('not a Hugging Face repo id either');
    expect(errorOf(() => resolveModel(TINY + '/config.json')).message).toContain('config.json: a file, not a snapshot directory');
    expect(errorOf(() => resolveModel('')).message).toMatch(/empty/);
  });
});

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

describe('BgeM3.load and the CLI take a repo id', () => {
  it('loads BAAI/bge-m3 from HF_HUB_CACHE with outputs identical to loading the directory', async () => {
    const cache = join(tmp, 'c4');
    makeCache(cache, 'BAAI/bge-m3', MAIN);
    setEnv({ HF_HUB_CACHE: cache });
    const fromCache = await BgeM3.load('BAAI/bge-m3');
    const fromDir = await BgeM3.load(TINY);
    try {
      const texts = ['What is BGE M3?', 'Definition of BM25'];
      const opts = { returnDense: true, returnSparse: true, returnColbert: true };
      const [a, b] = [await fromCache.encode(texts, opts), await fromDir.encode(texts, opts)];
      const dense = (o: typeof a) => o.denseVecs!.flatMap((v) => Array.from(v));
      expect(dense(a).length).toBeGreaterThan(0);
      expect(dense(a)).toEqual(dense(b));
      expect(a.lexicalWeights).toEqual(b.lexicalWeights);
    } finally {
      fromCache.dispose();
      fromDir.dispose();
    }
  });

  it('bge-m3 inspect --model BAAI/bge-m3 reads the cache; a missing repo exits 1 with the listing', async () => {
    const cache = join(tmp, 'c5');
    makeCache(cache, 'BAAI/bge-m3', MAIN);
    setEnv({ HF_HUB_CACHE: cache });
    const out = join(tmp, 'page.html');
    const [stdout, stderr] = [new Capture(), new Capture()];
    expect(await inspectCli(['--model', 'BAAI/bge-m3', 'q', '--out', out], { stdout, stderr }), stderr.text).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('<!DOCTYPE html>');

    const err = new Capture();
    expect(await inspectCli(['--model', 'BAAI/no-such-model', 'q', '--out', join(tmp, 'none.html')], { stdout: new Capture(), stderr: err })).toBe(1);
    expect(err.text).toContain(`Hugging Face cache ${cache} (HF_HUB_CACHE): no models--BAAI--no-such-model folder`);
  });
});
