/**
 * A model folder: where a snapshot's files (config.json, tokenizer files, weights) are found. The same
 * loader reads a directory on disk (Node), a folder URL ending in `/` (a Hugging Face
 * `…/resolve/<revision>/` URL or any static host) or File objects a page's user picked.
 */
import { fileExists, joinPath, readTextFile } from '../host/files.js';
import { openFileSource } from '../host/file-source.js';
import { blobSource, fetchOrExplain, HttpError, htmlPageError, isHtml, openUrlSource, Stall, type ByteSource, type UrlSourceOptions } from './source.js';
import { WeightFileError } from './types.js';

export interface ModelFolder {
  /** The directory, base URL or "picked files", named in errors. */
  readonly name: string;
  /** How a file of the folder is named in errors (its path or URL). */
  path(file: string): string;
  has(file: string): Promise<boolean>;
  open(file: string): Promise<ByteSource>;
  text(file: string): Promise<string>;
}

/** A directory on disk (Node only: the browser build has no file paths). */
export function dirFolder(dir: string): ModelFolder {
  return {
    name: dir,
    path: (f) => joinPath(dir, f),
    has: async (f) => fileExists(joinPath(dir, f)),
    open: (f) => openFileSource(joinPath(dir, f)),
    text: (f) => readTextFile(joinPath(dir, f)),
  };
}

/**
 * A folder URL (ending in `/`). `has` asks the server (404 → absent); the source it opened is kept for
 * the `open` that follows. Every request goes through `opts.fetch` (the Cache API layer hooks in there).
 */
export function urlFolder(base: string, opts: UrlSourceOptions = {}): ModelFolder {
  let url: URL;
  try {
    url = new URL(base, globalThis.location?.href);
  } catch {
    throw new TypeError(`'${base}' is not a URL`);
  }
  if (!url.pathname.endsWith('/')) {
    throw new TypeError(`a model folder URL must end in '/' (got '${base}'): files are looked up relative to it, e.g. ${base}/config.json`);
  }
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const opened = new Map<string, Promise<ByteSource | null>>();
  const fileUrl = (f: string) => new URL(f, url).href;
  const tryOpen = (f: string): Promise<ByteSource | null> => {
    let p = opened.get(f);
    if (!p) {
      p = openUrlSource(fileUrl(f), { ...opts, fetch: doFetch }).catch((e) => {
        if (e instanceof HttpError && e.status === 404) return null;
        throw e;
      });
      opened.set(f, p);
    }
    return p;
  };
  return {
    name: url.href,
    path: fileUrl,
    has: async (f) => (await tryOpen(f)) !== null,
    async open(f) {
      const src = await tryOpen(f);
      opened.delete(f);
      if (!src) throw new HttpError(fileUrl(f), 404, 'Not Found');
      return src;
    },
    async text(f) {
      const stall = new Stall(fileUrl(f), opts.stallSeconds);
      let bytes: Uint8Array;
      let r: Response;
      try {
        r = await fetchOrExplain(doFetch, fileUrl(f), { headers: opts.headers ?? {} }, stall);
        if (!r.ok) {
          await r.body?.cancel();
          throw new HttpError(fileUrl(f), r.status, r.statusText);
        }
        bytes = new Uint8Array(await r.arrayBuffer().catch((e) => { throw stall.error ?? e; }));
      } finally {
        stall.stop();
      }
      const expected = r.headers.get('content-length');
      // A Content-Length that the body does not reach: the download was cut (not for compressed bodies).
      if (expected !== null && !r.headers.get('content-encoding') && bytes.byteLength !== Number(expected)) {
        throw new WeightFileError(fileUrl(f), `the body ended after ${bytes.byteLength} of ${expected} bytes (truncated download)`);
      }
      const text = new TextDecoder().decode(bytes);
      // An HTML page for a folder's JSON file: a static host's index.html for a missing file.
      if (isHtml(r.headers.get('content-type')) && text.trimStart().startsWith('<')) throw htmlPageError(fileUrl(f), r.headers.get('content-type'));
      return text;
    },
  };
}

/** Files a user picked (`<input type=file webkitdirectory>` or drag and drop), found by their names. */
export function filesFolder(files: Iterable<Blob & { readonly name: string }>, name = 'the picked files'): ModelFolder {
  const byName = new Map<string, Blob & { readonly name: string }>();
  for (const f of files) byName.set(f.name, f);
  const get = (f: string) => {
    const b = byName.get(f);
    if (!b) throw new WeightFileError(`${name}: ${f}`, `not among ${name} (${[...byName.keys()].sort().join(', ') || 'none'})`);
    return b;
  };
  return {
    name,
    path: (f) => `${name}: ${f}`,
    has: async (f) => byName.has(f),
    open: async (f) => blobSource(get(f), `${name}: ${f}`),
    text: (f) => get(f).text(),
  };
}

/**
 * The folder, with the sources it opens reported to `onBytes`: once with (0, size) when one is opened,
 * then (bytes) after each read.
 */
export function countingFolder(folder: ModelFolder, onBytes: (bytes: number, opened?: number) => void): ModelFolder {
  return {
    ...folder,
    async open(f) {
      const src = await folder.open(f);
      onBytes(0, src.size);
      return {
        name: src.name,
        size: src.size,
        async read(position, length, what, into) {
          const out = await src.read(position, length, what, into);
          onBytes(length);
          return out;
        },
        close: () => src.close(),
      };
    },
  };
}
