// A local stand-in for the Hugging Face hub, serving one fixture snapshot directory on 127.0.0.1.
//
// Endpoints (the ones @huggingface/hub and src/hub/download.ts call):
//   GET /api/models/<repo>/revision/<rev>        model info with `sha` (modelInfo)
//   GET /api/models/<repo>/tree/<rev>[/<path>]   flat listing: type, path, size, oid, lfs {oid, size, pointerSize}
//   GET /<repo>/resolve/<rev>/<path>             file bytes (Range aware); LFS files redirect (302) to
//   GET /fake-cdn/<sha256>?path=<path>           the "CDN" serving LFS bytes (no auth, like a presigned URL)
// Errors mimic the hub: JSON `{"error": ...}` bodies with an `X-Error-Code` header (RepoNotFound,
// RevisionNotFound, EntryNotFound).
//
// Knobs for tests: `token` (require `Authorization: Bearer <token>`), `gated` (403 even with the token),
// `omit` (files the repo lacks), per-file `faults` (cut the body after N bytes, corrupt a byte, ignore Range,
// redirect in a loop or to file:), `listedSizes` (a listing that lies), `cdnOtherOrigin` (LFS bytes from
// another port), `apiRedirectLoop`.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface FakeHubFault {
  /** Send only this many body bytes, then destroy the connection. */
  cutAfter?: number;
  /** Flip one byte of the served content (size unchanged). */
  corrupt?: boolean;
  /** Answer Range requests with 200 and the whole file. */
  ignoreRange?: boolean;
  /** Answer the resolve request with a redirect to itself (a loop) or to a `file:` URL. */
  redirect?: 'loop' | 'file';
  /** How many responses the fault applies to (default: every one). */
  times?: number;
}

export interface FakeHubOptions {
  /** Fixture snapshot directory (every regular file in it is a repo file). */
  dir: string;
  repo?: string;
  /** Commit id `main` points to. */
  commit?: string;
  /** Which files are stored with LFS; default model.safetensors, pytorch_model.bin, *.pt. */
  isLfs?: (path: string) => boolean;
  /** Fixture files the repo does not have. */
  omit?: string[];
  /** When set, every hub request (not the CDN) must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Answer 403 to API and resolve requests (a gated repo whose conditions were not accepted). */
  gated?: boolean;
  faults?: Record<string, FakeHubFault>;
  /** Sizes the tree listing announces instead of the real ones (a lying or broken server). */
  listedSizes?: Record<string, number>;
  /** Serve LFS bytes from a second port, so the "CDN" is another origin (as the real hub's is). */
  cdnOtherOrigin?: boolean;
  /** The model-info endpoint redirects to itself. */
  apiRedirectLoop?: boolean;
}

export interface RecordedRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  /** Status answered. */
  status: number;
  /** Repo file this request served (resolve and CDN requests). */
  file?: string;
}

export interface FakeHubFile {
  path: string;
  content: Buffer;
  lfs: boolean;
  sha256: string;
  /** git blob id of what git stores: the content, or for LFS files the pointer. */
  oid: string;
  pointer?: string;
}

export interface FakeHub {
  /** Base URL, e.g. http://127.0.0.1:41234 (use as HF_ENDPOINT). */
  url: string;
  repo: string;
  commit: string;
  files: Map<string, FakeHubFile>;
  requests: RecordedRequest[];
  /** Mutable: tests may change token, gated, omit and faults between runs. */
  options: FakeHubOptions;
  /** Requests that transferred bytes of `path` (resolve without redirect, or CDN). */
  byteRequests(path: string): RecordedRequest[];
  close(): Promise<void>;
}

export function gitBlobSha1(content: Buffer | string): string {
  const buf = typeof content === 'string' ? Buffer.from(content) : content;
  return createHash('sha1').update(`blob ${buf.length}\0`).update(buf).digest('hex');
}

export function defaultIsLfs(path: string): boolean {
  return path === 'model.safetensors' || path === 'pytorch_model.bin' || path.endsWith('.pt');
}

function loadFiles(dir: string, isLfs: (p: string) => boolean): Map<string, FakeHubFile> {
  const files = new Map<string, FakeHubFile>();
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    if (!ent.isFile()) continue;
    const content = readFileSync(join(dir, ent.name));
    const sha256 = createHash('sha256').update(content).digest('hex');
    const lfs = isLfs(ent.name);
    const pointer = lfs ? `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${content.length}\n` : undefined;
    files.set(ent.name, { path: ent.name, content, lfs, sha256, oid: gitBlobSha1(pointer ?? content), pointer });
  }
  return files;
}

export async function startFakeHub(options: FakeHubOptions): Promise<FakeHub> {
  const repo = options.repo ?? 'BAAI/bge-m3';
  const commit = options.commit ?? createHash('sha1').update(`fake commit of ${repo}`).digest('hex');
  const files = loadFiles(options.dir, options.isLfs ?? defaultIsLfs);
  const requests: RecordedRequest[] = [];
  const faultUses = new Map<string, number>();

  const present = (path: string): FakeHubFile | undefined => (options.omit?.includes(path) ? undefined : files.get(path));

  const takeFault = (path: string): FakeHubFault | undefined => {
    const f = options.faults?.[path];
    if (!f) return undefined;
    const used = faultUses.get(path) ?? 0;
    if (f.times !== undefined && used >= f.times) return undefined;
    faultUses.set(path, used + 1);
    return f;
  };

  function send(res: ServerResponse, rec: RecordedRequest, status: number, body: string | object, headers: Record<string, string> = {}): void {
    rec.status = status;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  }

  function error(res: ServerResponse, rec: RecordedRequest, status: number, code: string | undefined, message: string): void {
    send(res, rec, status, { error: message }, code ? { 'X-Error-Code': code } : {});
  }

  /** Checks auth/gating for hub (non-CDN) requests; false when it already answered. */
  function admit(req: IncomingMessage, res: ServerResponse, rec: RecordedRequest): boolean {
    const auth = req.headers['authorization'];
    if (options.token !== undefined && auth !== `Bearer ${options.token}`) {
      if (auth) error(res, rec, 401, undefined, 'Invalid credentials in Authorization header');
      else error(res, rec, 401, 'GatedRepo', `Access to model ${repo} is restricted. You must be authenticated to access it.`);
      return false;
    }
    if (options.gated) {
      error(res, rec, 403, 'GatedRepo', `Access to model ${repo} is restricted and you are not in the authorized list.`);
      return false;
    }
    return true;
  }

  function resolveRev(rev: string): string | undefined {
    return rev === 'main' || rev === commit ? commit : undefined;
  }

  function serveBytes(req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, file: FakeHubFile, extra: Record<string, string>): void {
    rec.file = file.path;
    const fault = takeFault(file.path);
    let content = file.content;
    if (fault?.corrupt) {
      content = Buffer.from(content);
      const i = Math.floor(content.length / 2);
      content[i] = (content[i] ?? 0) ^ 0xff;
    }
    const size = content.length;
    const headers: Record<string, string> = { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', ...extra };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers['range'];
    if (range && !fault?.ignoreRange) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (!m || (m[1] === '' && m[2] === '')) {
        rec.status = 416;
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start >= size || start > end) {
        rec.status = 416;
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    const body = content.subarray(start, end + 1);
    headers['Content-Length'] = String(body.length);
    rec.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (fault?.cutAfter !== undefined && fault.cutAfter < body.length) {
      res.write(body.subarray(0, fault.cutAfter), () => {
        // Give the bytes a moment to leave before dropping the connection.
        setTimeout(() => res.socket?.destroy(), 20);
      });
      return;
    }
    res.end(body);
  }

  const apiPrefix = `/api/models/${repo}/`;
  const resolvePrefix = `/${repo}/resolve/`;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const rawUrl = req.url ?? '/';
    const rec: RecordedRequest = { method: req.method ?? 'GET', url: rawUrl, headers: req.headers, status: 0 };
    requests.push(rec);
    const u = new URL(rawUrl, 'http://fake-hub');
    const path = decodeURIComponent(u.pathname);

    if (path.startsWith('/fake-cdn/')) {
      const file = present(u.searchParams.get('path') ?? '');
      if (!file || file.sha256 !== path.slice('/fake-cdn/'.length)) return error(res, rec, 404, undefined, 'no such object');
      return serveBytes(req, res, rec, file, {});
    }

    if (path.startsWith('/api/models/')) {
      if (!path.startsWith(apiPrefix)) return error(res, rec, 404, 'RepoNotFound', 'Repository not found');
      if (!admit(req, res, rec)) return;
      const rest = path.slice(apiPrefix.length);
      const rev = /^revision\/(.+)$/.exec(rest);
      if (rev && options.apiRedirectLoop) return send(res, rec, 302, 'Found', { Location: rawUrl });
      if (rev) {
        const sha = resolveRev(rev[1] ?? '');
        if (!sha) return error(res, rec, 404, 'RevisionNotFound', `Invalid rev id: ${rev[1]}`);
        return send(res, rec, 200, {
          _id: 'fake0000',
          id: repo,
          sha,
          private: options.token !== undefined,
          gated: options.gated ? 'manual' : false,
          downloads: 0,
          likes: 0,
          lastModified: '2024-01-01T00:00:00.000Z',
          siblings: [...files.keys()].filter((p) => present(p)).map((rfilename) => ({ rfilename })),
        });
      }
      const tree = /^tree\/([^/]+)(?:\/(.*))?$/.exec(rest);
      if (tree) {
        const sha = resolveRev(tree[1] ?? '');
        if (!sha) return error(res, rec, 404, 'RevisionNotFound', `Invalid rev id: ${tree[1]}`);
        if (tree[2]) return send(res, rec, 200, []);
        const list = [...files.values()]
          .filter((f) => present(f.path))
          .map((f) => ({
            type: 'file',
            oid: f.oid,
            size: options.listedSizes?.[f.path] ?? f.content.length,
            path: f.path,
            ...(f.lfs ? { lfs: { oid: f.sha256, size: options.listedSizes?.[f.path] ?? f.content.length, pointerSize: Buffer.byteLength(f.pointer ?? '') } } : {}),
          }));
        return send(res, rec, 200, list);
      }
      return error(res, rec, 404, undefined, 'Sorry, we cannot find the page you are looking for.');
    }

    if (path.startsWith(resolvePrefix)) {
      if (!admit(req, res, rec)) return;
      const m = /^([^/]+)\/(.+)$/.exec(path.slice(resolvePrefix.length));
      const sha = resolveRev(m?.[1] ?? '');
      if (!m || !sha) return error(res, rec, 404, 'RevisionNotFound', 'Invalid rev id');
      const file = present(m[2] ?? '');
      if (!file) return error(res, rec, 404, 'EntryNotFound', `Entry not found`);
      const common: Record<string, string> = { 'X-Repo-Commit': sha, ETag: `"${file.lfs ? file.sha256 : file.oid}"` };
      const redirect = options.faults?.[file.path]?.redirect;
      if (redirect && takeFault(file.path)) {
        rec.file = file.path;
        return send(res, rec, 302, 'Found', { Location: redirect === 'loop' ? rawUrl : 'file:///etc/passwd' });
      }
      if (file.lfs) {
        rec.file = file.path;
        return send(res, rec, 302, `Found. Redirecting to /fake-cdn/${file.sha256}`, {
          ...common,
          Location: `${cdnServer ? `http://127.0.0.1:${(cdnServer.address() as AddressInfo).port}` : ''}/fake-cdn/${file.sha256}?path=${encodeURIComponent(file.path)}`,
          'X-Linked-Etag': `"${file.sha256}"`,
          'X-Linked-Size': String(file.content.length),
        });
      }
      return serveBytes(req, res, rec, file, common);
    }

    if (rawUrl.startsWith('/api/')) return error(res, rec, 404, undefined, 'Sorry, we cannot find the page you are looking for.');
    // Any other repo's resolve: the hub answers 404 RepoNotFound.
    return error(res, rec, 404, 'RepoNotFound', 'Repository not found');
  };
  const server = createServer(handler);
  // Same handler on another port: requests there are the "CDN" at another origin.
  const cdnServer = options.cdnOtherOrigin ? createServer(handler) : undefined;
  for (const srv of [server, cdnServer]) {
    if (srv) await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  }
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    repo,
    commit,
    files,
    requests,
    options,
    byteRequests(path: string) {
      return requests.filter((r) => r.file === path && r.status !== 302);
    },
    async close() {
      for (const srv of [server, cdnServer]) {
        if (!srv) continue;
        srv.closeAllConnections();
        await new Promise<void>((resolve, reject) => srv.close((err) => (err ? reject(err) : resolve())));
      }
    },
  };
}
