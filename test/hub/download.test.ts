import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/download.js';
import { createProgress } from '../../src/cli/progress.js';
import { resolveModel } from '../../src/hub/cache.js';
import { DownloadError, downloadSnapshot, selectSnapshotFiles } from '../../src/hub/download.js';
import { startFakeHub, type FakeHub, type FakeHubOptions } from '../helpers/fake-hub.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tiny-m3');
const EXPECTED_FILES = [
  'colbert_linear.pt',
  'config.json',
  'model.safetensors',
  'sentencepiece.bpe.model',
  'sparse_linear.pt',
  'special_tokens_map.json',
  'tokenizer.json',
  'tokenizer_config.json',
];
const TOKEN = 'hf_fakeTestToken123';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

let hub: FakeHub | undefined;
let tmp: string;
const savedEnv = { HF_ENDPOINT: process.env['HF_ENDPOINT'], HF_TOKEN: process.env['HF_TOKEN'], HF_HUB_CACHE: process.env['HF_HUB_CACHE'] };

async function startHub(opts: Partial<FakeHubOptions> = {}): Promise<FakeHub> {
  hub = await startFakeHub({ dir: FIXTURE, ...opts });
  process.env['HF_ENDPOINT'] = hub.url;
  return hub;
}

/** Runs the CLI in-process; returns exit code and captured output. */
async function cli(args: string[], retries = 0): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await run(args, { stdout, stderr, downloadOptions: { retries, retryDelayMs: 0 } });
  return { code, out: stdout.text, err: stderr.text };
}

async function expectSameAsFixture(dir: string, name: string): Promise<void> {
  const [got, want] = await Promise.all([readFile(join(dir, name)), readFile(join(FIXTURE, name))]);
  expect(got.length, name).toBe(want.length);
  expect(got.equals(want), `${name} differs from the fixture`).toBe(true);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bge-m3-download-'));
  delete process.env['HF_TOKEN'];
});

afterEach(async () => {
  await hub?.close();
  hub = undefined;
  await rm(tmp, { recursive: true, force: true });
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('bge-m3 download', () => {
  it('downloads the snapshot files byte-equal to the repo, safetensors preferred over pytorch_model.bin', async () => {
    const h = await startHub();
    const dir = join(tmp, 'w');
    const { code, out, err } = await cli(['--out', dir]);
    expect(err).not.toMatch(/error/i);
    expect(code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(EXPECTED_FILES);
    for (const f of EXPECTED_FILES) await expectSameAsFixture(dir, f);
    expect(out).toContain(`${EXPECTED_FILES.length} file(s) downloaded`);
    // Revision pinned: files were fetched at the commit, not at "main".
    const resolves = h.requests.filter((r) => r.url.includes('/resolve/'));
    expect(resolves.length).toBeGreaterThan(0);
    for (const r of resolves) expect(r.url).toContain(`/resolve/${h.commit}/`);
    expect(h.requests.some((r) => r.url.includes('pytorch_model.bin'))).toBe(false);
  });

  it('takes --dir, the old name of --out, with a deprecation warning; both at once is a usage error', async () => {
    await startHub();
    const dir = join(tmp, 'w');
    const old = await cli(['--dir', dir]);
    expect(old.code, old.err).toBe(0);
    expect(old.err).toMatch(/--dir is deprecated: use --out/);
    expect((await readdir(dir)).sort()).toEqual(EXPECTED_FILES);
    const both = await cli(['--dir', dir, '--out', dir]);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/give --out only \(--dir is its old name\)/);
  });

  it('falls back to pytorch_model.bin when the repo has no model.safetensors', async () => {
    await startHub({ omit: ['model.safetensors'] });
    const dir = join(tmp, 'w');
    const res = await downloadSnapshot({ dir, retries: 0 });
    expect(res.files.map((f) => f.path)).toContain('pytorch_model.bin');
    await expectSameAsFixture(dir, 'pytorch_model.bin');
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
  });

  it('names the required files the repo lacks and downloads nothing', async () => {
    const h = await startHub({ omit: ['tokenizer.json', 'model.safetensors', 'pytorch_model.bin'] });
    const { code, err } = await cli(['--out', join(tmp, 'w')]);
    expect(code).toBe(1);
    expect(err).toContain('tokenizer.json');
    expect(err).toContain('model.safetensors or pytorch_model.bin');
    expect(h.requests.some((r) => r.url.includes('/resolve/'))).toBe(false);
  });

  it('resumes an interrupted download with a Range request (next run)', async () => {
    const cut = 700_000;
    const h = await startHub({ faults: { 'model.safetensors': { cutAfter: cut, times: 1 } } });
    const dir = join(tmp, 'w');
    const first = await cli(['--out', dir]);
    expect(first.code).toBe(1);
    expect(first.err).toMatch(/model\.safetensors.*again to resume/s);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    const partSize = (await stat(join(dir, 'model.safetensors.part'))).size;
    expect(partSize).toBe(cut);

    const second = await cli(['--out', dir]);
    expect(second.code).toBe(0);
    const ranged = h.byteRequests('model.safetensors').filter((r) => r.headers['range']);
    expect(ranged.map((r) => r.headers['range'])).toEqual([`bytes=${cut}-`]);
    expect(ranged[0]?.status).toBe(206);
    await expectSameAsFixture(dir, 'model.safetensors');
    expect(existsSync(join(dir, 'model.safetensors.part'))).toBe(false);
    expect(second.err).toContain(`resumed at ${cut} bytes`);
  });

  it('resumes within one run when retries are allowed', async () => {
    const h = await startHub({ faults: { 'tokenizer.json': { cutAfter: 100_000, times: 2 } } });
    const dir = join(tmp, 'w');
    const res = await downloadSnapshot({ dir, retries: 3, retryDelayMs: 0 });
    await expectSameAsFixture(dir, 'tokenizer.json');
    expect(h.byteRequests('tokenizer.json').map((r) => r.headers['range'] ?? null)).toEqual([null, 'bytes=100000-', 'bytes=200000-']);
    expect(res.files.find((f) => f.path === 'tokenizer.json')?.verified).toMatch(/^git-sha1:/);
  });

  it('restarts cleanly when the server answers a Range request with 200', async () => {
    const h = await startHub({ faults: { 'model.safetensors': { ignoreRange: true } } });
    const dir = join(tmp, 'w');
    await startWithPart(dir, 'model.safetensors', Buffer.alloc(4096, 7)); // wrong bytes: appending would corrupt
    const logs: string[] = [];
    await downloadSnapshot({ dir, retries: 0, log: (l) => logs.push(l) });
    await expectSameAsFixture(dir, 'model.safetensors');
    expect(h.byteRequests('model.safetensors')[0]?.headers['range']).toBe('bytes=4096-');
    expect(h.byteRequests('model.safetensors')[0]?.status).toBe(200);
    expect(logs.join('\n')).toContain('ignored the Range request');
  });

  it('starts over once when resumed partial data does not verify (e.g. the file changed upstream)', async () => {
    const h = await startHub();
    const dir = join(tmp, 'w');
    await startWithPart(dir, 'model.safetensors', Buffer.alloc(4096, 7)); // stale bytes the server will append to
    const logs: string[] = [];
    const res = await downloadSnapshot({ dir, retries: 0, log: (l) => logs.push(l) });
    await expectSameAsFixture(dir, 'model.safetensors');
    expect(h.byteRequests('model.safetensors').map((r) => r.headers['range'] ?? null)).toEqual(['bytes=4096-', null]);
    expect(logs.join('\n')).toMatch(/model\.safetensors: resumed download failed verification \(sha256 mismatch/);
    expect(res.files.find((f) => f.path === 'model.safetensors')?.resumedFrom).toBe(4096);
  });

  it('detects a corrupted LFS file by sha256, names it and both hashes, and deletes the partial data', async () => {
    const h = await startHub({ faults: { 'model.safetensors': { corrupt: true } } });
    const dir = join(tmp, 'w');
    const { code, err } = await cli(['--out', dir]);
    expect(code).toBe(1);
    const want = h.files.get('model.safetensors')!.sha256;
    const bad = Buffer.from(h.files.get('model.safetensors')!.content);
    const i = Math.floor(bad.length / 2);
    bad[i] = bad[i]! ^ 0xff;
    expect(err).toContain('model.safetensors');
    expect(err).toContain(`expected ${want}`);
    expect(err).toContain(`got ${sha256(bad)}`);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    expect(existsSync(join(dir, 'model.safetensors.part'))).toBe(false);
  });

  it('detects a corrupted non-LFS file by its git blob sha1', async () => {
    const h = await startHub({ faults: { 'config.json': { corrupt: true } } });
    const err = await downloadSnapshot({ dir: join(tmp, 'w'), retries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).code).toBe('integrity');
    expect((err as Error).message).toContain(`config.json: git-sha1 mismatch: expected ${h.files.get('config.json')!.oid}`);
  });

  it('refuses to overwrite a differing local file without --force, keeps it, and replaces it with --force', async () => {
    const h = await startHub();
    const dir = join(tmp, 'w');
    await startWithFile(dir, 'config.json', '{"mine": true}\n');
    const refused = await cli(['--out', dir]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('config.json');
    expect(refused.err).toContain('--force');
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe('{"mine": true}\n');
    expect(h.requests.some((r) => r.url.includes('/resolve/'))).toBe(false); // nothing downloaded at all

    const forced = await cli(['--out', dir, '--force']);
    expect(forced.code).toBe(0);
    await expectSameAsFixture(dir, 'config.json');
  });

  it('refuses a same-size local file whose hash differs', async () => {
    await startHub();
    const dir = join(tmp, 'w');
    const orig = await readFile(join(FIXTURE, 'sparse_linear.pt'));
    const changed = Buffer.from(orig);
    changed[10] = changed[10]! ^ 1;
    await startWithFile(dir, 'sparse_linear.pt', changed);
    const { code, err } = await cli(['--out', dir]);
    expect(code).toBe(1);
    expect(err).toMatch(/sparse_linear\.pt \(sha256 [0-9a-f]{64}, repo has [0-9a-f]{64}\)/);
    expect((await readFile(join(dir, 'sparse_linear.pt'))).equals(changed)).toBe(true);
  });

  it('skips local files that are already identical', async () => {
    const h = await startHub();
    const dir = join(tmp, 'w');
    await startWithFile(dir, 'config.json', await readFile(join(FIXTURE, 'config.json')));
    await copyFile(join(FIXTURE, 'model.safetensors'), join(dir, 'model.safetensors'));
    const { code, err, out } = await cli(['--out', dir]);
    expect(code).toBe(0);
    expect(err).toContain('config.json: up to date');
    expect(err).toContain('model.safetensors: up to date');
    expect(out).toContain('2 up to date');
    expect(h.byteRequests('config.json')).toHaveLength(0);
    expect(h.requests.some((r) => r.url.includes('model.safetensors'))).toBe(false);
    for (const f of EXPECTED_FILES) await expectSameAsFixture(dir, f);
  });

  it('sends HF_TOKEN as a bearer token on every hub request', async () => {
    const h = await startHub({ token: TOKEN });
    process.env['HF_TOKEN'] = TOKEN;
    const { code } = await cli(['--out', join(tmp, 'w')]);
    expect(code).toBe(0);
    const hubRequests = h.requests.filter((r) => !r.url.startsWith('/fake-cdn/'));
    expect(hubRequests.length).toBeGreaterThan(EXPECTED_FILES.length);
    for (const r of hubRequests) expect(r.headers['authorization'], r.url).toBe(`Bearer ${TOKEN}`);
  });

  it('explains a 401 in terms of HF_TOKEN (missing or rejected)', async () => {
    await startHub({ token: TOKEN });
    const missing = await cli(['--out', join(tmp, 'w')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('401');
    expect(missing.err).toMatch(/set HF_TOKEN/);

    process.env['HF_TOKEN'] = 'hf_wrong';
    const wrong = await cli(['--out', join(tmp, 'w')]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/HF_TOKEN was sent but rejected/);
  });

  it('explains a 403 (gated repo) mentioning HF_TOKEN', async () => {
    await startHub({ token: TOKEN, gated: true });
    process.env['HF_TOKEN'] = TOKEN;
    const { code, err } = await cli(['--out', join(tmp, 'w')]);
    expect(code).toBe(1);
    expect(err).toContain('403');
    expect(err).toContain('gated');
    expect(err).toContain('HF_TOKEN');
  });

  it('reports a missing repo and a missing revision by name', async () => {
    await startHub();
    const repo = await cli(['--out', join(tmp, 'w'), '--repo', 'nobody/no-such-model']);
    expect(repo.code).toBe(1);
    expect(repo.err).toContain('repo nobody/no-such-model');
    expect(repo.err).toContain('not found');
    expect(repo.err).toContain('404');

    const rev = await cli(['--out', join(tmp, 'w'), '--revision', 'v9']);
    expect(rev.code).toBe(1);
    expect(rev.err).toContain('revision "v9" not found');
  });

  it('reports a refused connection', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    process.env['HF_ENDPOINT'] = `http://127.0.0.1:${port}`;
    const { code, err } = await cli(['--out', join(tmp, 'w')]);
    expect(code).toBe(1);
    expect(err).toContain('connection refused');
    expect(err).toContain('HF_ENDPOINT');
  });

  it('rejects unknown flags and positionals with a non-zero exit naming them', async () => {
    const flag = await cli(['--bogus-flag']);
    expect(flag.code).not.toBe(0);
    expect(flag.err).toContain('--bogus-flag');
    const pos = await cli(['extra']);
    expect(pos.code).not.toBe(0);
    expect(pos.err).toContain('extra');
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('--revision');
  });

  it('rejects a token @huggingface/hub would refuse, naming HF_TOKEN', async () => {
    await startHub();
    process.env['HF_TOKEN'] = 'not-a-hub-token';
    const { code, err } = await cli(['--out', join(tmp, 'w')]);
    expect(code).toBe(2);
    expect(err).toContain('HF_TOKEN');
  });
});

describe('bge-m3 download against a misbehaving server', () => {
  it('names a redirect loop instead of "cannot reach (fetch failed)", and claims no partial file', async () => {
    await startHub({ faults: { 'config.json': { redirect: 'loop' } } });
    const dir = join(tmp, 'w');
    const { code, err } = await cli(['--out', dir], 2);
    expect(code).toBe(1);
    expect(err).toMatch(/config\.json: redirect loop: http:\/\/127\.0\.0\.1:\d+\/BAAI\/bge-m3\/resolve\/[0-9a-f]{40}\/config\.json -> http/);
    expect(err).not.toMatch(/cannot reach|fetch failed|\.part/);
    expect(existsSync(join(dir, 'config.json.part'))).toBe(false);
  });

  it('refuses a redirect to a file: URL, naming it', async () => {
    await startHub({ faults: { 'model.safetensors': { redirect: 'file' } } });
    const { code, err } = await cli(['--out', join(tmp, 'w')]);
    expect(code).toBe(1);
    expect(err).toContain('model.safetensors: ');
    expect(err).toContain('redirects to file:///etc/passwd, which is not an http(s) URL');
    expect(err).not.toMatch(/cannot reach|fetch failed|\.part/);
  });

  it('names a redirect loop on the API (model info) too', async () => {
    await startHub({ apiRedirectLoop: true });
    const { code, err } = await cli(['--out', join(tmp, 'w')]);
    expect(code).toBe(1);
    expect(err).toContain('answered with too many redirects (a redirect loop) while resolving BAAI/bge-m3@main');
    expect(err).not.toMatch(/cannot reach|fetch failed/);
  });

  it('refuses a negative size in the listing before downloading anything', async () => {
    const h = await startHub({ listedSizes: { 'model.safetensors': -5 } });
    const { code, err } = await cli(['--out', join(tmp, 'w')]);
    expect(code).toBe(1);
    expect(err).toContain("the hub's file listing gives model.safetensors the size -5, which is not a byte count");
    expect(err).not.toMatch(/ENOENT/);
    expect(h.requests.some((r) => r.url.includes('/resolve/'))).toBe(false);
  });

  it('promises a resume only when partial data was kept', async () => {
    await startHub({ faults: { 'tokenizer.json': { cutAfter: 0 } } });
    const { code, err } = await cli(['--out', join(tmp, 'w')]);
    expect(code).toBe(1);
    expect(err).toMatch(/tokenizer\.json.* (broke after|ended after|cannot reach)/); // the socket may close before or after the headers
    expect(err).toContain('No data was received');
    expect(err).not.toContain('is kept in');
  });

  it('sends the token to the hub origin only, never to the CDN origin it redirects to', async () => {
    const h = await startHub({ token: TOKEN, cdnOtherOrigin: true });
    process.env['HF_TOKEN'] = TOKEN;
    const dir = join(tmp, 'w');
    const { code, err } = await cli(['--out', dir]);
    expect(code, err).toBe(0);
    await expectSameAsFixture(dir, 'model.safetensors');
    const cdn = h.requests.filter((r) => r.url.startsWith('/fake-cdn/'));
    expect(cdn.length).toBeGreaterThan(0);
    for (const r of cdn) {
      expect(r.headers['host']).not.toBe(new URL(h.url).host);
      expect(r.headers['authorization'], r.url).toBeUndefined();
    }
  });
});

describe('bge-m3 download into the Hugging Face cache (no --out)', () => {
  it('writes blobs, snapshot symlinks and refs/main as huggingface_hub does; resolveModel finds it', async () => {
    const h = await startHub();
    const cache = join(tmp, 'hf-cache');
    process.env['HF_HUB_CACHE'] = cache;
    const { code, out, err } = await cli([]);
    expect(code, err).toBe(0);
    const repoDir = join(cache, 'models--BAAI--bge-m3');
    const snap = join(repoDir, 'snapshots', h.commit);
    expect(out).toContain(`in ${snap}`);
    expect(out).toContain('load it with --model BAAI/bge-m3');
    expect(await readFile(join(repoDir, 'refs', 'main'), 'utf8')).toBe(h.commit);
    expect((await readdir(snap)).sort()).toEqual(EXPECTED_FILES);
    for (const name of EXPECTED_FILES) {
      const f = h.files.get(name)!;
      expect(await readlink(join(snap, name))).toBe(join('..', '..', 'blobs', f.lfs ? f.sha256 : f.oid));
      await expectSameAsFixture(snap, name);
    }
    expect(resolveModel('BAAI/bge-m3').dir).toBe(snap);

    const again = await cli([]);
    expect(again.code).toBe(0);
    expect(again.out).toContain(`0 file(s) downloaded (0 B), ${EXPECTED_FILES.length} up to date`);
  });

  it('keeps a differing real file in the snapshot folder unless --force', async () => {
    const h = await startHub();
    const cache = join(tmp, 'hf-cache');
    const snap = join(cache, 'models--BAAI--bge-m3', 'snapshots', h.commit);
    await mkdir(snap, { recursive: true });
    await writeFile(join(snap, 'config.json'), '{"edited": true}\n');
    const err = await downloadSnapshot({ cacheDir: cache, retries: 0 }).catch((e: unknown) => e as DownloadError);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as DownloadError).code).toBe('conflict');
    expect((err as Error).message).toContain(`${join(snap, 'config.json')} (size 17 bytes, repo has`);
    expect(await readFile(join(snap, 'config.json'), 'utf8')).toBe('{"edited": true}\n');
    await downloadSnapshot({ cacheDir: cache, retries: 0, force: true });
    await expectSameAsFixture(snap, 'config.json');
  });

  it('resumes from blobs/<sha256>.incomplete with a Range request', async () => {
    const cut = 500_000;
    const h = await startHub({ faults: { 'model.safetensors': { cutAfter: cut, times: 1 } } });
    const cache = join(tmp, 'hf-cache');
    const first = await downloadSnapshot({ cacheDir: cache, retries: 0 }).catch((e: unknown) => e as Error);
    expect(first).toBeInstanceOf(DownloadError);
    const incomplete = join(cache, 'models--BAAI--bge-m3', 'blobs', `${h.files.get('model.safetensors')!.sha256}.incomplete`);
    expect((first as Error).message).toContain(`is kept in ${incomplete}`);
    expect((await stat(incomplete)).size).toBe(cut);
    const res = await downloadSnapshot({ cacheDir: cache, retries: 0 });
    expect(res.files.find((f) => f.path === 'model.safetensors')).toMatchObject({ status: 'downloaded', resumedFrom: cut });
    expect(h.byteRequests('model.safetensors').map((r) => r.headers['range'] ?? null)).toEqual([null, `bytes=${cut}-`]);
    await expectSameAsFixture(res.dir, 'model.safetensors');
    expect(existsSync(incomplete)).toBe(false);
  });
});

describe('selectSnapshotFiles', () => {
  it('prefers .safetensors heads and weights, takes the LFS sha256 and the git sha1 of plain files', () => {
    const entries = [
      ...['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'].map((path) => ({
        type: 'file' as const,
        path,
        size: 3,
        oid: 'a'.repeat(40),
      })),
      ...['model.safetensors', 'pytorch_model.bin', 'colbert_linear.pt', 'colbert_linear.safetensors', 'sparse_linear.pt'].map((path) => ({
        type: 'file' as const,
        path,
        size: 9,
        oid: 'b'.repeat(40),
        lfs: { oid: 'c'.repeat(64), size: 9, pointerSize: 130 },
      })),
    ];
    const { files, missing } = selectSnapshotFiles(entries);
    expect(missing).toEqual([]);
    expect(files.map((f) => f.path)).toEqual([
      'config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'special_tokens_map.json',
      'model.safetensors',
      'colbert_linear.safetensors',
      'sparse_linear.pt',
    ]);
    expect(files[0]).toEqual({ path: 'config.json', size: 3, gitSha1: 'a'.repeat(40) });
    expect(files[4]).toEqual({ path: 'model.safetensors', size: 9, sha256: 'c'.repeat(64) });

    // Sizes and hashes that cannot be right are refused, naming the file.
    const withEntry = (path: string, patch: object) => entries.map((e) => (e.path === path ? { ...e, ...patch } : e));
    expect(() => selectSnapshotFiles(withEntry('config.json', { size: 1.5 }))).toThrow(/config\.json the size 1\.5, which is not a byte count/);
    expect(() => selectSnapshotFiles(withEntry('model.safetensors', { lfs: { oid: 'xyz', size: 9, pointerSize: 130 } }))).toThrow(/model\.safetensors the LFS hash "xyz", which is not a sha256/);
    expect(selectSnapshotFiles(withEntry('pytorch_model.bin', { size: -1, lfs: undefined })).files).toHaveLength(7); // unused files are not judged
  });
});

describe('createProgress', () => {
  it('is silent on a non-TTY stream unless forced', async () => {
    const quiet = new Capture();
    const p = createProgress('file.bin', 100, 'bytes', { stream: quiet });
    p.update(50);
    p.stop();
    expect(p.active).toBe(false);
    expect(quiet.text).toBe('');

    const loud = new Capture();
    const q = createProgress('file.bin', 2048, 'bytes', { stream: loud, force: true, notTTYScheduleMs: 5 });
    q.update(1024);
    await new Promise((r) => setTimeout(r, 30));
    q.stop();
    expect(q.active).toBe(true);
    expect(loud.text).toContain('file.bin');
    expect(loud.text).toContain('1.00 KiB/2.00 KiB');

    const items = new Capture();
    const it2 = createProgress('cases', 4, 'items', { stream: items, force: true });
    it2.increment();
    it2.increment(2);
    it2.stop();
    expect(items.text).toContain('3/4');
  });
});

async function startWithFile(dir: string, name: string, content: string | Buffer): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name), content);
}

async function startWithPart(dir: string, name: string, content: Buffer): Promise<void> {
  await startWithFile(dir, `${name}.part`, content);
}
