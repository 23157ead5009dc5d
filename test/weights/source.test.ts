/**
 * Byte sources in Node: the weight readers read the same tensors from a file, a Blob and a URL (HTTP
 * Range requests against a 127.0.0.1 server), and the URL source tells a 404, a server without Range
 * support, a short body and a file changed between two ranges, naming the URL.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors } from '../../src/weights/safetensors.js';
import { openTorchCheckpoint } from '../../src/weights/torch.js';
import { blobSource, openUrlSource } from '../../src/weights/source.js';
import { openSnapshot } from '../../src/weights/snapshot.js';
import { expectedShapes } from '../../src/model/params.js';
import { urlFolder } from '../../src/weights/folder.js';
import { etagOf, serveFile, startStaticServer, type StaticServer } from '../../src/serve/static.js';
import { checkpointDir } from '../helpers/fixtures.js';

const DIR = checkpointDir('small-m3');

describe('byte sources', () => {
  let server: StaticServer;
  let version = 0;
  const intercept = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = join(DIR, path.split('/').pop()!);
    if (path.startsWith('/norange/')) {
      // Ignores Range: always the whole file with 200.
      delete req.headers.range;
      serveFile(req, res, file);
      return true;
    }
    if (path.startsWith('/short/') && req.headers.range === 'bytes=0-0') {
      serveFile(req, res, file);
      return true;
    }
    if (path.startsWith('/short/')) {
      const r = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '')!;
      const st = statSync(file);
      // Declares fewer bytes than asked, and sends them: a body shorter than the range.
      const n = Number(r[2]) - Number(r[1]);
      res.writeHead(206, { 'Content-Length': String(n), 'Content-Range': `bytes ${r[1]}-${Number(r[2]) - 1}/${st.size}`, ETag: etagOf(st) });
      res.end(readFileSync(file).subarray(Number(r[1]), Number(r[1]) + n));
      return true;
    }
    if (path.startsWith('/changing/')) {
      const orig = res.writeHead.bind(res);
      const etag = `"v${version++ === 0 ? 1 : 2}"`;
      res.writeHead = ((status: number, headers: Record<string, string>) => orig(status, { ...headers, ETag: etag })) as typeof res.writeHead;
      serveFile(req, res, file);
      return true;
    }
    return false;
  };
  beforeAll(async () => {
    server = await startStaticServer({ mounts: { '/m/': DIR }, intercept });
  });
  afterAll(() => server?.close());

  it('a URL and a Blob give the same tensors as the file, safetensors and torch.save alike', async () => {
    const file = await openSafetensors(join(DIR, 'model.safetensors'));
    const url = await openSafetensors(await openUrlSource(`${server.url}m/model.safetensors`));
    const blob = await openSafetensors(blobSource(new Blob([readFileSync(join(DIR, 'model.safetensors'))]), 'model.safetensors'));
    expect(url.keys()).toEqual(file.keys());
    for (const k of file.keys()) {
      const want = (await file.readRaw(k)).bytes;
      expect(Buffer.from((await url.readRaw(k)).bytes).equals(Buffer.from(want)), k).toBe(true);
      expect(Buffer.from((await blob.readRaw(k)).bytes).equals(Buffer.from(want)), k).toBe(true);
    }
    const tf = await openTorchCheckpoint(join(DIR, 'pytorch_model.bin'));
    const tu = await openTorchCheckpoint(await openUrlSource(`${server.url}m/pytorch_model.bin`));
    expect(tu.keys()).toEqual(tf.keys());
    for (const k of tf.keys()) expect((await tu.readFloat32(k)).data, k).toEqual((await tf.readFloat32(k)).data);
    const snap = await openSnapshot(urlFolder(`${server.url}m/`), expectedShapes);
    expect(snap.files.encoder).toBe(`${server.url}m/model.safetensors`);
    expect(snap.files.colbert_linear).toBe(`${server.url}m/colbert_linear.pt`);
    await Promise.all([file.close(), url.close(), blob.close(), tf.close(), tu.close(), snap.close()]);
  });

  it('tells a 404, a server without Range, a short body and a changed file, naming the URL', async () => {
    await expect(openUrlSource(`${server.url}m/nothing.safetensors`)).rejects.toThrow(`${server.url}m/nothing.safetensors: HTTP 404 Not Found`);
    const whole = await openUrlSource(`${server.url}norange/model.safetensors`);
    await expect(whole.read(8, 16, 'header')).rejects.toThrow(/norange\/model\.safetensors: header: the server does not answer HTTP Range requests/);
    expect((await whole.read(0, whole.size, 'file')).byteLength).toBe(statSync(join(DIR, 'model.safetensors')).size);
    await expect(openSafetensors(await openUrlSource(`${server.url}short/model.safetensors`)))
      .rejects.toThrow(/short\/model\.safetensors: header length: (the body ended after 7 of 8 bytes|the connection broke)/);
    version = 0;
    await expect(openSafetensors(await openUrlSource(`${server.url}changing/model.safetensors`)))
      .rejects.toThrow(/changing\/model\.safetensors: header length: the file changed on the server between two range requests \(version "v1" then "v2"\)/);
    await expect(blobSource(new Blob([new Uint8Array(10)]), 'b').read(4, 8, 'tensor x')).rejects.toThrow('b: tensor x: file ends after 10 bytes');
    const gated: typeof fetch = async () => new Response('no', { status: 401, statusText: 'Unauthorized' });
    await expect(openUrlSource('https://hub.example/gated/model.safetensors', { fetch: gated }))
      .rejects.toThrow("https://hub.example/gated/model.safetensors: HTTP 401 Unauthorized (a private or gated repository: load with headers: { Authorization: 'Bearer <token>' }");
  });
});

describe('URL bodies: byte streams (read into one reused scratch) and plain streams', () => {
  const SIZE = 3 << 20; // several scratch buffers' worth
  const file = Uint8Array.from({ length: SIZE }, (_, i) => (i * 7 + 3) & 255);
  /** A server in a `fetch`: answers Range requests with the file's bytes, `extra` more or fewer, as a byte stream or not. */
  const fakeFetch = (bytes: boolean, extra: number): typeof fetch => async (_url, init) => {
    const range = /bytes=(\d+)-(\d+)/.exec(String((init?.headers as Record<string, string>).Range))!;
    const [a, b] = [Number(range[1]), Number(range[2])];
    const body = file.slice(a, Math.min(SIZE, b + 1 + extra));
    const pieces = [body.subarray(0, 100_000), body.subarray(100_000)]; // two chunks of uneven size
    const stream = bytes
      ? new ReadableStream({ type: 'bytes', start(c) { for (const p of pieces) if (p.length) c.enqueue(p.slice()); c.close(); } })
      : new ReadableStream<Uint8Array>({ start(c) { for (const p of pieces) if (p.length) c.enqueue(p.slice()); c.close(); } });
    return new Response(stream, { status: 206, headers: { 'content-range': `bytes ${a}-${b}/${SIZE}`, etag: '"x"' } });
  };

  it.each([['byte stream', true], ['plain stream', false]] as const)('%s: reads exact ranges into a target, refuses a body longer or shorter than asked', async (_label, bytes) => {
    const src = await openUrlSource('http://x/f.bin', { fetch: fakeFetch(bytes, 0) });
    const into = new Uint8Array(SIZE - 10);
    await src.read(5, SIZE - 10, "tensor 't'", () => into);
    expect(Buffer.from(into).equals(Buffer.from(file.subarray(5, SIZE - 5)))).toBe(true);
    expect(Array.from(await src.read(SIZE - 3, 3, 'tail'))).toEqual(Array.from(file.subarray(SIZE - 3)));
    const long = await openUrlSource('http://x/f.bin', { fetch: fakeFetch(bytes, 3) });
    await expect(long.read(0, 1_500_000, "tensor 't'")).rejects.toThrow("http://x/f.bin: tensor 't': the server sent more than the 1500000 bytes asked for");
    const short = await openUrlSource('http://x/f.bin', { fetch: fakeFetch(bytes, -3) });
    await expect(short.read(10, 1_500_000, "tensor 't'")).rejects.toThrow("http://x/f.bin: tensor 't': the body ended after 1499997 of 1500000 bytes (truncated download)");
  });
});

describe('a server that stalls is given up, not waited for', () => {
  let server: StaticServer;
  const held: ServerResponse[] = []; // answers never finished (closed with the server)
  beforeAll(async () => {
    server = await startStaticServer({
      mounts: { '/m/': DIR },
      intercept: (req, res) => {
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        if (path.startsWith('/silent/')) { held.push(res); return true; } // accepts, never answers
        if (path.startsWith('/midway/') && req.headers.range !== 'bytes=0-0') {
          // The headers and half the body, then nothing.
          const st = statSync(join(DIR, 'model.safetensors'));
          const r = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '')!;
          const n = Number(r[2]) - Number(r[1]) + 1;
          res.writeHead(206, { 'Content-Length': String(n), 'Content-Range': `bytes ${r[1]}-${r[2]}/${st.size}`, ETag: etagOf(st) });
          res.write(readFileSync(join(DIR, 'model.safetensors')).subarray(Number(r[1]), Number(r[1]) + Math.floor(n / 2)));
          held.push(res);
          return true;
        }
        if (path.startsWith('/midway/')) { serveFile(req, res, join(DIR, path.split('/').pop()!)); return true; }
        return false;
      },
    });
  });
  afterAll(async () => {
    for (const r of held) r.destroy();
    await server?.close();
  });

  it('before the headers, in the middle of a body, and for a folder\'s JSON file: an error naming the URL within the limit', async () => {
    const t0 = performance.now();
    await expect(openUrlSource(`${server.url}silent/model.safetensors`, { stallSeconds: 0.3 }))
      .rejects.toThrow(`${server.url}silent/model.safetensors: the server sent nothing for 0.3 s (stalled)`);
    const src = await openUrlSource(`${server.url}midway/model.safetensors`, { stallSeconds: 0.3 });
    await expect(src.read(0, 4096, "tensor 'x'"))
      .rejects.toThrow(`${server.url}midway/model.safetensors: tensor 'x': after 2048 of 4096 bytes, the server sent nothing for 0.3 s (stalled)`);
    await expect(urlFolder(`${server.url}silent/`, { stallSeconds: 0.3 }).text('config.json'))
      .rejects.toThrow(`${server.url}silent/config.json: the server sent nothing for 0.3 s (stalled)`);
    expect(performance.now() - t0).toBeLessThan(10_000);
    await expect(openUrlSource(`${server.url}m/model.safetensors`, { stallSeconds: 0 })).rejects.toThrow('stallSeconds must be a positive number, got 0');
  });
});
