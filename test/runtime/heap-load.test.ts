/**
 * Loading straight into the wasm heap, from every kind of folder (a directory, a URL read by HTTP
 * Range requests, picked File objects) and both formats (safetensors, a torch.save zip), gives the
 * same parameters, bit for bit, as the host path (host array, then tf.tensor), and the load says
 * which tensors went which way (`weightLoad`), so a format that silently falls back fails here.
 * F16 tensors and strided torch views fall back and are named with the reason; a load that fails
 * mid-tensor (a cut body, a file changed between two ranges) names the URL and the tensor and frees
 * every tensor it made.
 */
import { mkdtempSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend.js';
import { BgeM3 } from '../../src/m3.js';
import { buildParams, disposeParams, expectedShapes, type M3Params } from '../../src/model/params.js';
import { activeWasmBackend, heapU8, weightSource, type WeightLoadStats } from '../../src/runtime/heap-load.js';
import { etagOf, serveFile, startStaticServer, type StaticServer } from '../../src/serve/static.js';
import { dirFolder, filesFolder, type ModelFolder } from '../../src/weights/folder.js';
import { openSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { openSnapshot } from '../../src/weights/snapshot.js';
import { urlFolder } from '../../src/weights/folder.js';
import { contiguousStride, writeTorchCheckpoint, type StorageSpec, type TensorSpec } from '../../src/weights/torch-writer.js';
import { checkpointDir } from '../helpers/fixtures.js';

const TINY = checkpointDir('tiny-m3');
const TEXT_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'sentencepiece.bpe.model'];
/** Strided in the torch checkpoint below (a transposed storage): it must take the host path. */
const STRIDED = 'encoder.layer.0.attention.self.query.weight';
/** Stored as F16 in the mixed safetensors below. */
const HALF = /LayerNorm\.weight$/;

/** Every tensor of a parameter tree, by path (q/k/v through their whole-tensor views). */
function flatten(p: M3Params): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  const walk = (o: unknown, path: string): void => {
    if (o instanceof tf.Tensor) out.set(`${path}.weight`, o); // the embedding tables
    else if (Array.isArray(o)) o.forEach((v, i) => walk(v, `${path}.${i}`));
    else if (o && typeof o === 'object') {
      if ('weight' in o && 'bias' in o) {
        out.set(`${path}.weight`, (o as { weight: tf.Tensor }).weight);
        out.set(`${path}.bias`, (o as { bias: tf.Tensor }).bias);
        return;
      }
      for (const [k, v] of Object.entries(o)) walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(p, '');
  return out;
}

/** The bits of a float32 tensor (so NaN payloads and -0 count). */
const bits = (t: tf.Tensor): Buffer => Buffer.from((t.dataSync() as Float32Array).slice().buffer);

/** The folder's parameters read both ways: `weightSource` over the open files, and host arrays only. */
async function loadBothWays(folder: string | ModelFolder): Promise<{ direct: M3Params; host: M3Params; stats: WeightLoadStats; hostStats: WeightLoadStats }> {
  const snap = await openSnapshot(folder, expectedShapes);
  try {
    const source = weightSource(snap);
    const direct = await buildParams(snap.config, snap.colbertDim, source);
    const hostSource = weightSource({ take: snap.take });
    const host = await buildParams(snap.config, snap.colbertDim, hostSource);
    return { direct, host, stats: source.stats(), hostStats: hostSource.stats() };
  } finally {
    await snap.close();
  }
}

/** Every parameter equal bit for bit; returns the tensor count. */
function expectSameBits(a: M3Params, b: M3Params, label: string): number {
  const fa = flatten(a);
  const fb = flatten(b);
  expect([...fa.keys()], label).toEqual([...fb.keys()]);
  for (const [k, t] of fa) {
    expect(t.shape, `${label}: ${k}`).toEqual(fb.get(k)!.shape);
    expect(bits(t).equals(bits(fb.get(k)!)), `${label}: ${k}`).toBe(true);
  }
  return fa.size;
}

/** A folder of tiny-m3's text files (symlinked) and the given weight files. */
function folderWith(weights: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bge-m3-stream-'));
  for (const f of TEXT_FILES) symlinkSync(join(TINY, f), join(dir, f));
  for (const [name, from] of Object.entries(weights)) symlinkSync(from, join(dir, name));
  return dir;
}

/**
 * tiny-m3's encoder as a torch.save zip: every tensor a view at its own offset into one shared
 * storage (so reads start mid-storage), except STRIDED, a transposed view of a storage of its own.
 */
async function writeTorchEncoder(path: string): Promise<void> {
  const st = await openSafetensors(join(TINY, 'model.safetensors'));
  try {
    const tensors: TensorSpec[] = [];
    const chunks: Uint8Array[] = [];
    let offset = 0; // elements
    let strided: StorageSpec | undefined;
    for (const name of st.keys()) {
      const { data, shape } = await st.readFloat32(name);
      if (name === STRIDED) {
        const [r, c] = shape as [number, number];
        const t = new Float32Array(r * c); // [c, r] row-major: the transpose
        for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = data[i * c + j]!;
        strided = { key: 'T', type: 'FloatStorage', bytes: new Uint8Array(t.buffer) };
        tensors.push({ name, storage: 'T', size: shape, stride: [1, r] });
        continue;
      }
      tensors.push({ name, storage: 'all', size: shape, stride: contiguousStride(shape), offset });
      chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      offset += data.length;
    }
    const all = new Uint8Array(offset * 4);
    let at = 0;
    for (const c of chunks) { all.set(c, at); at += c.byteLength; }
    await writeTorchCheckpoint(path, { archive: 'pytorch_model', storages: [{ key: 'all', type: 'FloatStorage', bytes: all }, strided!], tensors });
  } finally {
    await st.close();
  }
}

/** tiny-m3's encoder as safetensors with the LayerNorm weights stored as F16 (their values rounded to half first). */
async function writeMixedEncoder(path: string): Promise<void> {
  const st = await openSafetensors(join(TINY, 'model.safetensors'));
  try {
    const { toFloat16Bits } = await import('../../src/weights/dtype.js');
    const tensors = await Promise.all(st.keys().map(async (name) => {
      const { data, shape } = await st.readFloat32(name);
      const half = HALF.test(name);
      const bytes = half ? new Uint8Array(Uint16Array.from(data, toFloat16Bits).buffer) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      return { name, shape, dtype: half ? 'F16' as const : 'F32' as const, bytes: () => bytes };
    }));
    await writeSafetensors(path, tensors);
  } finally {
    await st.close();
  }
}

describe('weights straight into the wasm heap', () => {
  let server: StaticServer;
  let torchDir: string;
  let mixedDir: string;
  /** Range requests answered for weight files (path, bytes), and the most in flight at once. */
  const ranges: Array<[string, number]> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  /** The largest tiny-m3 tensor's bytes: a fault hits only the request that reads it. */
  let biggest = 0;
  let changes = 0;

  const intercept = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const m = /^\/(ok|cut|changing)\/(torch|tiny)\/(.*)$/.exec(path);
    if (!m) return false;
    const [, kind, which, name] = m as unknown as [string, string, string, string];
    const file = join(which === 'torch' ? torchDir : TINY, name);
    const r = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
    const length = r ? Number(r[2]) - Number(r[1]) + 1 : 0;
    if (r && /\.(bin|pt|safetensors)$/.test(name)) ranges.push([path, length]);
    if (kind === 'cut' && length >= biggest) {
      // Promise every byte asked for, send a third of them, then drop the connection.
      res.writeHead(206, { 'Content-Length': String(length), 'Content-Range': `bytes ${r![1]}-${r![2]}/${statSync(file).size}`, ETag: etagOf(statSync(file)) });
      res.write(Buffer.alloc(Math.floor(length / 3)));
      setTimeout(() => res.destroy(), 20);
      return true;
    }
    if (kind === 'changing' && length >= biggest) {
      // The file is re-uploaded just before its largest tensor is read: a new ETag.
      const orig = res.writeHead.bind(res);
      res.writeHead = ((status: number, headers: Record<string, string>) => orig(status, { ...headers, ETag: `"v${++changes}"` })) as typeof res.writeHead;
    }
    // Held a little, so that the reads the loader runs in parallel are seen in flight together.
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    setTimeout(() => serveFile(req, res, file), 5);
    return true;
  };

  beforeAll(async () => {
    await useBackend('wasm');
    const st = await openSafetensors(join(TINY, 'model.safetensors'));
    biggest = Math.max(...st.keys().map((k) => st.info(k).shape.reduce((a, b) => a * b, 4)));
    await st.close();
    const work = mkdtempSync(join(tmpdir(), 'bge-m3-stream-files-'));
    await writeTorchEncoder(join(work, 'pytorch_model.bin'));
    await writeMixedEncoder(join(work, 'model.safetensors'));
    torchDir = folderWith({ 'pytorch_model.bin': join(work, 'pytorch_model.bin'), 'colbert_linear.pt': join(TINY, 'colbert_linear.pt'), 'sparse_linear.pt': join(TINY, 'sparse_linear.pt') });
    mixedDir = folderWith({ 'model.safetensors': join(work, 'model.safetensors'), 'colbert_linear.pt': join(TINY, 'colbert_linear.pt'), 'sparse_linear.pt': join(TINY, 'sparse_linear.pt') });
    server = await startStaticServer({ mounts: {}, intercept });
  });
  afterAll(() => server?.close());

  /** The reasons of the host-path tensors, by name. */
  const hostReasons = (s: WeightLoadStats) => Object.fromEntries(s.hostTensors.map((t) => [t.name, t.reason]));
  /** tiny-m3's sparse head is stored F16: its two tensors always take the host path. */
  const SPARSE_F16 = { 'sparse_linear.weight': 'F16, converted to float32 on the host', 'sparse_linear.bias': 'F16, converted to float32 on the host' };

  it('safetensors from a directory, a URL and picked Files: all F32 direct, bit for bit the host path', async () => {
    const files = [...TEXT_FILES, 'model.safetensors', 'colbert_linear.pt', 'sparse_linear.pt'].map((f) => new File([readFileSync(join(TINY, f))], f));
    const dir = await loadBothWays(dirFolder(TINY));
    for (const [label, folder] of [['directory', dirFolder(TINY)], ['URL', urlFolder(`${server.url}ok/tiny/`)], ['picked Files', filesFolder(files)]] as const) {
      ranges.length = 0;
      maxInFlight = 0;
      const got = await loadBothWays(folder);
      const n = expectSameBits(got.direct, got.host, label);
      expectSameBits(got.direct, dir.host, `${label} vs the directory`);
      console.log(`tiny-m3 safetensors, ${label}: ${JSON.stringify({ ...got.stats, hostTensors: got.stats.hostTensors.length })}${label === 'URL' ? `, ${ranges.length} range requests, ${maxInFlight} in flight at most` : ''}`);
      expect(hostReasons(got.stats)).toEqual(SPARSE_F16);
      expect(got.stats.direct.tensors).toBe(n - 2);
      expect(got.stats.direct.bytes + got.stats.host.bytes).toBe(got.hostStats.host.bytes);
      expect(got.hostStats.hostTensors.every((t) => t.reason === 'no open weight file to read it from')).toBe(true);
      if (label === 'URL') {
        expect(ranges.filter(([p]) => p.endsWith('/model.safetensors')).length).toBeGreaterThan(n / 2); // one Range request per tensor
        expect(maxInFlight).toBeGreaterThanOrEqual(2);
      }
      disposeParams(got.direct);
      disposeParams(got.host);
    }
    disposeParams(dir.direct);
    disposeParams(dir.host);
  });

  it('a torch.save zip from a directory, a URL and picked Files: contiguous views direct (at their storage offsets), a strided one on the host, bit for bit', async () => {
    const ref = await loadBothWays(dirFolder(TINY)); // the same values from model.safetensors
    const names = [...TEXT_FILES, 'pytorch_model.bin', 'colbert_linear.pt', 'sparse_linear.pt'];
    const files = names.map((f) => new File([readFileSync(join(torchDir, f))], f));
    for (const [label, folder] of [['directory', dirFolder(torchDir)], ['URL', urlFolder(`${server.url}ok/torch/`)], ['picked Files', filesFolder(files)]] as const) {
      ranges.length = 0;
      const got = await loadBothWays(folder);
      const n = expectSameBits(got.direct, got.host, `torch ${label}`);
      expectSameBits(got.direct, ref.host, `torch ${label} vs model.safetensors`);
      console.log(`tiny-m3 pytorch_model.bin, ${label}: ${JSON.stringify(got.stats)}`);
      expect(hostReasons(got.stats)).toEqual({ ...SPARSE_F16, [STRIDED]: expect.stringMatching(/^a strided view of storage 'data\/T' \(stride \[1,32\]\)/) });
      expect(got.stats.direct.tensors).toBe(n - 3);
      if (label === 'URL') expect(ranges.filter(([p]) => p.endsWith('/pytorch_model.bin')).length).toBeGreaterThan(n / 2);
      disposeParams(got.direct);
      disposeParams(got.host);
    }
    disposeParams(ref.direct);
    disposeParams(ref.host);
  });

  it('mixed safetensors (F16 LayerNorm weights): those fall back and say so, the rest direct, bit for bit', async () => {
    const got = await loadBothWays(dirFolder(mixedDir));
    const n = expectSameBits(got.direct, got.host, 'mixed');
    const half = [...flatten(got.direct).keys()].filter((k) => HALF.test(k));
    expect(half.length).toBe(1 + 2 * 2); // the embeddings' and two per layer
    expect(hostReasons(got.stats)).toEqual({ ...SPARSE_F16, ...Object.fromEntries(half.map((k) => [k, 'F16, converted to float32 on the host'])) });
    expect(got.stats.direct.tensors).toBe(n - 2 - half.length);
    disposeParams(got.direct);
    disposeParams(got.host);
  });

  it('BgeM3.load by URL: weightLoad says direct, and the outputs equal the directory load', async () => {
    const ids = [[0, 581, 6, 2], [0, 3537, 4, 912, 2]];
    const a = await BgeM3.load(TINY, { backend: 'wasm' });
    const b = await BgeM3.load(`${server.url}ok/torch/`, { backend: 'wasm' });
    try {
      expect(a.weightLoad!.direct.tensors).toBe(flatten(a.params).size - 2);
      expect(b.weightLoad!.host.tensors).toBe(3);
      const want = await a.encode({ inputIds: ids }, { returnDense: true, returnSparse: true, returnColbert: true });
      const got = await b.encode({ inputIds: ids }, { returnDense: true, returnSparse: true, returnColbert: true });
      expect(got.denseVecs).toEqual(want.denseVecs);
      expect(got.lexicalWeights).toEqual(want.lexicalWeights);
      expect(got.colbertVecs).toEqual(want.colbertVecs);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('a body cut mid-tensor, or a file changed between two ranges: the error names the URL and tensor, and the load frees every tensor', async () => {
    const backend = activeWasmBackend()!;
    const before = tf.memory().numTensors;
    const fail = (url: string) => BgeM3.load(url, { backend: 'wasm' }).then(() => 'loaded', (e: Error) => e.message);
    const cut = await fail(`${server.url}cut/torch/`);
    console.log(`cut: ${cut}`);
    expect(cut).toMatch(/\/cut\/torch\/pytorch_model\.bin: tensor 'embeddings\.\w+\.weight' \(storage 'data\/all'\): (the connection broke after \d+ of \d+ bytes|the body ended after \d+ of \d+ bytes)/);
    expect(tf.memory().numTensors).toBe(before);
    const heap = heapU8(backend).length;
    const bytes = tf.memory().numBytes;
    expect(await fail(`${server.url}cut/tiny/`)).toMatch(/\/cut\/tiny\/model\.safetensors: tensor 'embeddings\.\w+\.weight': /);
    changes = 0;
    const changed = await fail(`${server.url}changing/torch/`);
    console.log(`changed: ${changed}`);
    expect(changed).toMatch(/\/changing\/torch\/pytorch_model\.bin: tensor 'embeddings\.\w+\.weight' \(storage 'data\/all'\): the file changed on the server between two range requests/);
    expect(await fail(`${server.url}cut/torch/`)).toBe(cut);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.memory().numBytes).toBe(bytes);
    expect(heapU8(backend).length).toBe(heap); // failed loads do not grow the heap
  });
});
