/**
 * Byte sources: where a weight reader gets its bytes. The readers (safetensors, the torch.save zip and
 * its pickle) only ever ask for "exactly `length` bytes at `position`", so the same reader works on a
 * file (Node, host/files.ts), a Blob or File (browsers, Node ≥ 20) and a URL read with HTTP Range
 * requests (browsers and Node, through `fetch`). Every error is a WeightFileError naming the source.
 */
import { WeightFileError } from './types.js';

export interface ByteSource {
  /** The file path or URL, named in every error. */
  readonly name: string;
  /** Total bytes. */
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `position`. With `into`, the bytes go to the view it returns,
   * asked again before each chunk (it may be a view of memory that can move, such as a wasm heap);
   * otherwise into a new array. `what` names the part being read in errors ("tensor 'x'").
   */
  read(position: number, length: number, what: string, into?: () => Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Checks a read request against the source's size; the error says what was being read. */
function checkRange(src: { name: string; size: number }, position: number, length: number, what: string): void {
  if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0) {
    throw new RangeError(`${src.name}: ${what}: bad byte range (${position}, ${length})`);
  }
  if (position + length > src.size) {
    throw new WeightFileError(src.name, `${what}: file ends after ${src.size} bytes (needed ${length} bytes at offset ${position}; truncated?)`);
  }
}

/** The target of one read: the caller's view (checked for size) or a new array. */
function readTarget(src: { name: string }, length: number, into?: () => Uint8Array): () => Uint8Array {
  if (!into) {
    const buf = new Uint8Array(length);
    return () => buf;
  }
  return () => {
    const v = into();
    if (v.byteLength < length) throw new RangeError(`${src.name}: read target holds ${v.byteLength} bytes, ${length} asked`);
    return v;
  };
}

/**
 * A byte source from its one primitive, `fill`: write `length` (> 0) bytes at `position` into
 * `out()`, a view asked again before each chunk. The range is checked and the target made here, once
 * for every kind of source.
 */
export function byteSource(
  name: string, size: number,
  fill: (position: number, length: number, what: string, out: () => Uint8Array) => Promise<void>,
  close: () => Promise<void> = async () => {},
): ByteSource {
  const src: ByteSource = {
    name,
    size,
    async read(position, length, what, into) {
      checkRange(src, position, length, what);
      const out = readTarget(src, length, into);
      if (length > 0) await fill(position, length, what, out);
      return out();
    },
    close,
  };
  return src;
}

/** A Blob (or a File the user picked): `slice` reads only the range asked for. */
export function blobSource(blob: Blob, name = (blob as Partial<File>).name ?? 'blob'): ByteSource {
  return byteSource(name, blob.size, async (position, length, what, out) => {
    const CHUNK = 64 << 20; // one ArrayBuffer per 64 MB slice, not one of the whole range
    for (let done = 0; done < length;) {
      const n = Math.min(CHUNK, length - done);
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await blob.slice(position + done, position + done + n).arrayBuffer());
      } catch (e) {
        throw new WeightFileError(name, `${what}: cannot read (${(e as Error).message}; was the file changed or removed after it was picked?)`);
      }
      if (bytes.byteLength !== n) throw new WeightFileError(name, `${what}: read ${bytes.byteLength} bytes at ${position + done}, expected ${n} (file changed?)`);
      out().set(bytes, done);
      done += n;
    }
  });
}

export interface UrlSourceOptions {
  /** `fetch` to use (default: the global one); tests and the Cache API layer pass their own. */
  fetch?: typeof fetch;
  /** Extra request headers (an `Authorization` for a private repository, say). */
  headers?: Record<string, string>;
  /**
   * Seconds a request may go without receiving anything (its headers, then each chunk of its body)
   * before it is given up as stalled, with an error naming the URL (default 60).
   */
  stallSeconds?: number;
}

const DEFAULT_STALL_SECONDS = 60;

/**
 * A request's watchdog: aborts it when nothing arrives for `seconds` (a server that accepts the
 * connection and then sends nothing would otherwise hang the load for ever). `touch` on every chunk,
 * `stop` when done.
 */
export class Stall {
  private readonly ctl = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  constructor(private readonly url: string, private readonly seconds = DEFAULT_STALL_SECONDS) {
    if (!(seconds > 0)) throw new RangeError(`stallSeconds must be a positive number, got ${seconds}`);
    this.touch();
  }

  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  /** The stall error when the watchdog fired (to throw instead of the fetch's own AbortError). */
  get error(): WeightFileError | undefined {
    return this.ctl.signal.aborted ? (this.ctl.signal.reason as WeightFileError) : undefined;
  }

  /** What the error says, after the URL. */
  get detail(): string {
    return `the server sent nothing for ${this.seconds} s (stalled); the request was given up (stallSeconds sets the limit)`;
  }

  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.ctl.abort(new WeightFileError(this.url, this.detail)), this.seconds * 1000);
    (this.timer as { unref?: () => void }).unref?.(); // Node: a watchdog alone does not keep the process alive
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/** An HTTP(S) error status, told plainly. */
export class HttpError extends WeightFileError {
  constructor(url: string, readonly status: number, statusText: string) {
    super(url, status === 404 ? 'HTTP 404 Not Found (no such file at this URL)'
      : status === 401 || status === 403
        ? `HTTP ${status} ${statusText}`.trim() + " (a private or gated repository: load with headers: { Authorization: 'Bearer <token>' }, a token that may read it)"
        : `HTTP ${status} ${statusText}`.trim());
    this.name = 'HttpError';
  }
}

/** The CORS response header that lets a page read what a ranged read needs (Content-Length and Last-Modified are readable anyway). */
const CORS_EXPOSE = 'Access-Control-Expose-Headers: Content-Range, Content-Length, ETag';

/**
 * `fetch` with its network failure (offline, DNS, a CORS refusal: a page's fetch does not say which) named.
 * A failure a `fetch` layer already told (a WeightFileError: the Cache API's full quota) passes as it is.
 * A GET is tried twice: a kept-alive connection the server has just closed fails the first try (ECONNRESET).
 */
export async function fetchOrExplain(doFetch: typeof fetch, url: string, init: RequestInit, stall?: Stall): Promise<Response> {
  let error: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const r = await doFetch(url, stall ? { ...init, signal: stall.signal } : init);
      stall?.touch(); // the headers came: the body has its own time
      return r;
    } catch (e) {
      if (stall?.error) throw stall.error;
      if (e instanceof WeightFileError) throw e;
      error = e;
    }
  }
  const cause = (error as { cause?: { message?: string } }).cause?.message; // Node's fetch puts the reason there
  throw new WeightFileError(url, `request failed (${(error as Error).message}${cause ? `: ${cause}` : ''}): the server is unreachable, or, in a page, `
    + 'refused the request by CORS: a server at another origin than the page (and any server it redirects to) must send '
    + `Access-Control-Allow-Origin (the page's origin, or *) and ${CORS_EXPOSE}`);
}

/**
 * The error for an HTML page where a model file was expected: a static host's answer for a missing
 * file is often its index.html with status 200 (a single-page-app fallback), not a 404.
 */
export function htmlPageError(url: string, contentType: string | null): WeightFileError {
  return new WeightFileError(url, `the server answered with an HTML page (Content-Type ${contentType ?? 'none'}), not the model file: is the URL right? `
    + '(a host that answers every path with its index.html, as single-page-app hosting does, sends that page for a missing file)');
}

/** Whether a Content-Type names an HTML page. */
export const isHtml = (contentType: string | null): boolean => /^\s*text\/html\b/i.test(contentType ?? '');

/** The total size at the end of a Content-Range header ('bytes 0-0/1234', a 416's 'bytes *' + '/1234'), or null. */
function rangeTotal(contentRange: string | null): number | null {
  const m = /\/(\d+)\s*$/.exec(contentRange ?? '');
  return m ? Number(m[1]) : null;
}

/** What identifies one version of a remote file: its ETag, else its Last-Modified date. */
function validator(r: Response): string | null {
  return r.headers.get('etag') ?? r.headers.get('last-modified');
}

/**
 * A body's chunks, read into one reused 1 MB scratch buffer when the body is a byte stream (Chromium's
 * and Node's fetch): a multi-GB download then leaves no new ArrayBuffer per chunk for the GC to catch
 * up with (in a page that garbage showed as a few hundred MB above the heap). Otherwise the stream's
 * own chunks. A chunk is valid until the next `read`; null at the end of the body.
 */
function chunkReader(body: ReadableStream<Uint8Array>, length: number): { read(): Promise<Uint8Array | null>; release(): void } {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: 'byob' });
  } catch {
    const reader = body.getReader(); // not a byte stream
    return { read: async () => { const c = await reader.read(); return c.done ? null : c.value; }, release: () => reader.releaseLock() };
  }
  let scratch = new ArrayBuffer(Math.min(length + 1, 1 << 20));
  let room = length + 1; // one byte more than asked for, to see a body that is too long
  return {
    async read() {
      const c = await byob.read(new Uint8Array(scratch, 0, Math.max(1, Math.min(scratch.byteLength, room))));
      if (c.value) scratch = c.value.buffer as ArrayBuffer; // the read hands the (transferred) scratch back
      if (c.done || !c.value) return null;
      room -= c.value.byteLength;
      return c.value;
    },
    release: () => byob.releaseLock(),
  };
}

/** Reads a response body into `out()` at [0, length); refuses a body shorter or longer than that. */
async function readBody(r: Response, url: string, what: string, length: number, out: () => Uint8Array, stall: Stall): Promise<void> {
  if (!r.body) throw new WeightFileError(url, `${what}: the response has no body`);
  const reader = chunkReader(r.body, length);
  let done = 0;
  try {
    for (;;) {
      let chunk: Uint8Array | null;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (stall.error) throw new WeightFileError(url, `${what}: after ${done} of ${length} bytes, ${stall.detail}`);
        throw new WeightFileError(url, `${what}: the connection broke after ${done} of ${length} bytes (${(e as Error).message})`);
      }
      stall.touch();
      if (chunk === null) break;
      if (done + chunk.byteLength > length) {
        throw new WeightFileError(url, `${what}: the server sent more than the ${length} bytes asked for`);
      }
      out().set(chunk, done);
      done += chunk.byteLength;
    }
  } finally {
    reader.release();
  }
  if (done !== length) throw new WeightFileError(url, `${what}: the body ended after ${done} of ${length} bytes (truncated download)`);
}

/**
 * A file on an HTTP(S) server, read with Range requests: only the bytes asked for are fetched, and a
 * tensor's bytes stream straight into its destination (no second copy of the file in JS memory).
 * The first request learns the size and the file's ETag (or Last-Modified); a later response naming
 * another version or size is refused (the file changed between two ranges). A server that ignores
 * Range is refused for any read but a whole-file one.
 */
export async function openUrlSource(url: string, opts: UrlSourceOptions = {}): Promise<ByteSource> {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const headers = opts.headers ?? {};
  const watch = () => new Stall(url, opts.stallSeconds);
  // bytes=0-0: one byte, and the Content-Range header tells the total size.
  const firstStall = watch();
  const first = await fetchOrExplain(doFetch, url, { headers: { ...headers, Range: 'bytes=0-0' } }, firstStall).finally(() => firstStall.stop());
  if (first.status !== 206 && !first.ok) {
    await first.body?.cancel();
    throw new HttpError(url, first.status, first.statusText);
  }
  let size: number;
  let ranges: boolean;
  if (isHtml(first.headers.get('content-type'))) {
    await first.body?.cancel();
    throw htmlPageError(url, first.headers.get('content-type'));
  }
  if (first.status === 206) {
    const contentRange = first.headers.get('content-range');
    const total = rangeTotal(contentRange);
    await first.body?.cancel();
    if (contentRange === null) {
      // A browser hides every response header CORS does not expose: the 206 is there, its Content-Range is not.
      throw new WeightFileError(url, 'the server answered a Range request (HTTP 206) but its Content-Range header is missing or hidden: '
        + `a server at another origin than the page must expose it (${CORS_EXPOSE})`);
    }
    if (total === null) throw new WeightFileError(url, `the server answered a Range request with an unreadable Content-Range '${contentRange}' (expected 'bytes 0-0/<total size>')`);
    size = total;
    ranges = true;
  } else {
    const len = first.headers.get('content-length');
    await first.body?.cancel();
    if (len === null) throw new WeightFileError(url, 'the server ignores Range requests and sends no Content-Length: its size is unknown');
    size = Number(len);
    ranges = false;
  }
  const version = validator(first);

  return byteSource(url, size, async (position, length, what, out) => {
    const whole = position === 0 && length === size;
    if (!ranges && !whole) {
      throw new WeightFileError(url, `${what}: the server does not answer HTTP Range requests, which reading part of this file needs`);
    }
    const stall = watch();
    try {
      const r = await fetchOrExplain(doFetch, url, {
        headers: whole ? headers : { ...headers, Range: `bytes=${position}-${position + length - 1}` },
      }, stall);
      if (r.status !== 206 && !(whole && r.status === 200)) {
        await r.body?.cancel();
        if (r.status === 416) {
          // The range lies within the size the first answer gave: the file on the server is not that file any more.
          const now = rangeTotal(r.headers.get('content-range'));
          throw new WeightFileError(url, `${what}: the server refused bytes ${position}–${position + length - 1} of the ${size}-byte file (HTTP 416 Range Not Satisfiable`
            + `${now === null ? '' : `; it now has ${now} bytes`}): the file changed on the server since it was opened; reload to read it afresh`);
        }
        if (!r.ok) throw new HttpError(url, r.status, r.statusText);
        throw new WeightFileError(url, `${what}: asked for bytes ${position}–${position + length - 1}, the server sent the whole file (HTTP ${r.status}): did the file change?`);
      }
      const now = validator(r);
      const total = r.status === 206 ? rangeTotal(r.headers.get('content-range')) : size;
      if ((version !== null && now !== version) || total !== size) {
        await r.body?.cancel();
        throw new WeightFileError(url, `${what}: the file changed on the server between two range requests `
          + `(${total !== size ? `size ${size} then ${total ?? 'unreadable'}` : `version ${version} then ${now}`}); reload to read it afresh`);
      }
      await readBody(r, url, what, length, out, stall);
    } finally {
      stall.stop();
    }
  });
}
