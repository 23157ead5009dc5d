/**
 * An opt-in browser cache for model files, so that a reload does not fetch the weights again: a `fetch`
 * for `BgeM3.load(url, { fetch: cachingFetch() })` that keeps each file whole in the Cache API and
 * answers Range requests by slicing the cached copy. The first request for a file downloads it whole
 * (the loader reads every byte of it anyway) into the cache, which the browser streams to disk.
 */
import { WeightFileError } from './types.js';

/** `[start, end]` of a `bytes=a-b` Range header, or null when there is none. */
function parseRange(headers: HeadersInit | undefined): [number, number] | null {
  const range = new Headers(headers).get('range');
  if (range === null) return null;
  const m = /^bytes=(\d+)-(\d+)$/.exec(range);
  if (!m) throw new TypeError(`cachingFetch: unsupported Range header '${range}'`);
  return [Number(m[1]), Number(m[2])];
}

export function cachingFetch(cacheName = 'bge-m3-tfjs', base: typeof fetch = globalThis.fetch.bind(globalThis)): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!globalThis.caches) throw new WeightFileError(url, 'the Cache API is not available here (it needs a browser page in a secure context: https or localhost)');
    const cache = await caches.open(cacheName);
    let hit = await cache.match(url);
    if (!hit) {
      const headers = new Headers(init?.headers);
      headers.delete('range');
      const r = await base(url, { ...init, headers });
      if (!r.ok) return r; // a 404 or an error status is the caller's to tell
      const size = r.headers.get('content-length');
      try {
        await cache.put(url, r);
      } catch (e) {
        // A failed put stores nothing (the Cache API commits an entry whole); the delete makes sure of it.
        await cache.delete(url).catch(() => false);
        const quota = (e as Error).name === 'QuotaExceededError';
        throw new WeightFileError(url, quota
          ? `the browser cache is full (QuotaExceededError): this site's storage quota has no room for the file${size === null ? '' : ` (${size} bytes)`}. `
            + `Free space with caches.delete('${cacheName}') or by clearing this site's data in the browser, or load without cachingFetch`
          : `could not store it in the browser cache '${cacheName}' (${(e as Error).message})`);
      }
      hit = await cache.match(url);
      if (!hit) throw new WeightFileError(url, `stored in the browser cache '${cacheName}' but not found there again`);
    }
    const blob = await hit.blob();
    const headers: Record<string, string> = { 'Content-Type': hit.headers.get('content-type') ?? 'application/octet-stream' };
    const validator = hit.headers.get('etag');
    if (validator) headers.ETag = validator;
    const lastModified = hit.headers.get('last-modified');
    if (lastModified) headers['Last-Modified'] = lastModified;
    const range = parseRange(init?.headers);
    if (!range) return new Response(blob, { status: 200, headers: { ...headers, 'Content-Length': String(blob.size) } });
    const [start, end] = [range[0], Math.min(range[1], blob.size - 1)];
    if (start > end) return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${blob.size}` } });
    return new Response(blob.slice(start, end + 1), {
      status: 206,
      headers: { ...headers, 'Content-Length': String(end - start + 1), 'Content-Range': `bytes ${start}-${end}/${blob.size}` },
    });
  };
}
