/**
 * A small static file server for pages that run the model: it sends the COOP/COEP headers that make
 * a page crossOriginIsolated (so the wasm backend can use threads), answers HTTP Range requests with
 * an ETag (what `BgeM3.load(url)` reads weights with), and serves only files under the folders it is
 * given. Used by `npm run explorer` and the browser tests. Node only.
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8', '.wasm': 'application/wasm', '.map': 'application/json', '.css': 'text/css',
  '.png': 'image/png', '.txt': 'text/plain; charset=utf-8',
};

export interface StaticServerOptions {
  /** URL prefix (starting and ending in `/`) → directory. */
  mounts: Record<string, string>;
  /** Send COOP/COEP (default true): without them the page is not crossOriginIsolated (one wasm thread). */
  isolate?: boolean;
  /** Port (default: any free one). */
  port?: number;
  /**
   * Answer cross-origin pages as a model host must (the Hugging Face hub does): allow any origin, expose
   * the headers a ranged read needs (Content-Range, Content-Length, ETag, Last-Modified), answer the
   * OPTIONS preflight, and let a crossOriginIsolated (COEP require-corp) page embed the responses.
   * Default false: same-origin only.
   */
  cors?: boolean;
  /** Called first with every request; return true when it answered the request itself (tests inject faults). */
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export interface StaticServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** The file a URL path names under the mounts, or null (never a path outside them). */
function resolvePath(mounts: Record<string, string>, urlPath: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  for (const [prefix, dir] of Object.entries(mounts)) {
    if (!path.startsWith(prefix)) continue;
    const base = normalize(dir);
    const file = normalize(join(dir, path.slice(prefix.length)));
    if (file !== base && !file.startsWith(base.replace(/\/?$/, sep))) return null;
    return file;
  }
  return null;
}

/** The ETag this server gives a file: its size and modification time. */
export const etagOf = (st: { size: number; mtimeMs: number }): string => `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;

export function serveFile(req: IncomingMessage, res: ServerResponse, file: string): void {
  let st;
  try {
    st = statSync(file);
    if (st.isDirectory()) {
      file = join(file, 'index.html');
      st = statSync(file);
    }
  } catch {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    return;
  }
  const etag = etagOf(st);
  const headers: Record<string, string> = {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    ETag: etag,
    'Last-Modified': st.mtime.toUTCString(),
    'Cache-Control': 'no-cache',
  };
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (req.headers.range && (!range || Number(range[1]) >= st.size)) {
    res.writeHead(416, { ...headers, 'Content-Range': `bytes */${st.size}` }).end();
    return;
  }
  const start = range ? Number(range[1]) : 0;
  const end = range && range[2] !== '' ? Math.min(Number(range[2]), st.size - 1) : st.size - 1;
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
  headers['Content-Length'] = String(Math.max(0, end - start + 1));
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD' || end < start) {
    res.end();
    return;
  }
  createReadStream(file, { start, end }).pipe(res);
}

export async function startStaticServer(opts: StaticServerOptions): Promise<StaticServer> {
  const isolate = opts.isolate ?? true;
  const server = createServer((req, res) => {
    if (isolate) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    res.setHeader('Cross-Origin-Resource-Policy', opts.cors ? 'cross-origin' : 'same-origin');
    if (opts.cors) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length, ETag, Last-Modified');
    }
    if (opts.intercept?.(req, res)) return;
    if (opts.cors && req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, HEAD',
        'Access-Control-Allow-Headers': 'Range, Authorization',
        'Access-Control-Max-Age': '600',
      }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const file = resolvePath(opts.mounts, new URL(req.url ?? '/', 'http://x').pathname);
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    serveFile(req, res, file);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    server,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
