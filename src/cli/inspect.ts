// `bge-m3 inspect --model DIR "query" ["passage"] [--out FILE | --serve [--port N]] [--max-length N] [--backend NAME] [--force]`
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-write.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, resolve } from 'node:path';
import { BACKENDS } from '../backend.js';
import { renderPage } from '../inspect/page.js';
import { buildReport, DEFAULT_MAX_LENGTH } from '../inspect/report.js';
import { TRAINABLE_HEAD_NAMES } from '../lab/heads/registry.js';
import { defineCommand } from './command.js';
import { CliError, type CliIO } from './io.js';

export const DEFAULT_OUT = 'bge-m3-inspect.html';
export const DEFAULT_PORT = 8765;

export const USAGE = `Usage: bge-m3 inspect --model DIR "query" ["passage"] [--out FILE | --serve [--port N]]
                     [--max-length N] [--layers LIST] [--lens HEAD] [--attribute TOKEN]
                     [--backend NAME] [--force]

Runs the model on a query (and a passage) and writes one self-contained HTML page (no network needed)
that shows the tokens coloured by sparse weight, the attention of every layer and head (heatmap and
head view), the ColBERT alignment, the lexical-match breakdown, the three scores and per-layer
hidden-state norms.

Options:
  --model <dir|repo>  snapshot directory (config.json, tokenizer, weights), or a repo id such as
                      BAAI/bge-m3[@revision] found in the Hugging Face cache (HF_HUB_CACHE, HF_HOME)
  --out <file>        write the page here (default ${DEFAULT_OUT}); an existing file is kept unless --force
  --force             overwrite an existing --out file
  --serve             serve the page on http://127.0.0.1 instead of writing a file (Ctrl-C stops)
  --port <n>          port for --serve (default ${DEFAULT_PORT}; 0 picks a free one)
  --max-length <n>    truncate each text to n tokens, <s> and </s> included (default ${DEFAULT_MAX_LENGTH})
  --layers <list>     store the attention of these layers only, e.g. 0,11,20-23 (default: all); the
                      attention is layers × heads × tokens² bytes before compression, so for BGE-M3
                      (24 × 16) and long texts a few layers keep the page small
  --lens <head>       add a sparse-lens section: the head (${TRAINABLE_HEAD_NAMES.join(', ')}) applied to
                      every hidden state of each text, a layers × tokens heatmap (see bge-m3 sparse lens)
  --attribute <token> add an attribution section: where the lexical weight of this token of the query
                      (a piece such as ▁retrieval, or the bare word) comes from, per layer, attention
                      head, MLP and input token (gradient-based; see m3.attribute)
  --backend <name>    ${BACKENDS.join(' | ')} (default wasm)
  -h, --help          show this help
`;

export interface InspectIO extends CliIO {
  /** Stops --serve (as Ctrl-C does). */
  signal?: AbortSignal;
  /** Called with the page's URL once --serve listens. */
  onListening?: (url: string) => void;
}

const usage = (message: string): CliError => new CliError(message, true);

/** An integer flag in [min, max]; a usage error otherwise. */
function intArg(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < min || n > max) throw usage(`--${name} must be an integer in [${min}, ${max}], got '${v}'`);
  return n;
}

/** Runs the command; returns the exit code (0 ok, 1 failure, 2 usage error). */
export const run = defineCommand({
  name: 'inspect', usage: USAGE, positionals: true,
  options: {
    model: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' }, serve: { type: 'boolean' }, port: { type: 'string' },
    'max-length': { type: 'string' }, layers: { type: 'string' }, lens: { type: 'string' }, attribute: { type: 'string' }, backend: { type: 'string' },
  },
}, async ({ values, positionals, stdout, stderr, modelDir, load }, io: InspectIO) => {
  const dir = modelDir();
  if (positionals.length < 1 || positionals.length > 2) throw usage(`expected a query and optionally a passage, got ${positionals.length} texts`);
  if (values.serve && values.out !== undefined) throw usage('--out and --serve exclude each other');
  if (values.port !== undefined && !values.serve) throw usage('--port needs --serve');
  if (values.force && values.serve) throw usage('--force applies to --out only');
  if (values.out !== undefined && values.out.trim() === '') throw usage('--out must not be empty');
  const port = intArg(values.port, 'port', 0, 65535) ?? DEFAULT_PORT;
  const maxLengthFlag = intArg(values['max-length'], 'max-length', 2, Number.MAX_SAFE_INTEGER);
  const layers = values.layers === undefined ? undefined : parseLayers(values.layers);
  if (values.lens !== undefined && !TRAINABLE_HEAD_NAMES.includes(values.lens)) {
    throw usage(`--lens must be one of ${TRAINABLE_HEAD_NAMES.join(', ')}, got '${values.lens}'`);
  }
  if (values.attribute !== undefined && values.attribute.trim() === '') throw usage('--attribute must name a token of the query');
  const out = values.serve ? undefined : resolve(values.out ?? DEFAULT_OUT);
  if (out !== undefined && !values.force && existsSync(out)) throw new CliError(`${out} exists; pass --force to overwrite it`);

  const [query, passage] = positionals as [string, string | undefined];
  let html: string;
  const started = Date.now();
  const m3 = await load(dir);
  try {
    const maxLength = maxLengthFlag ?? Math.min(DEFAULT_MAX_LENGTH, m3.maxLength); // the model's own limit when smaller
    if (maxLength > m3.maxLength) throw usage(`--max-length must be at most ${m3.maxLength} for this model, got ${maxLength}`);
    const L = m3.config.num_hidden_layers;
    const outside = layers?.find((i) => i >= L);
    if (outside !== undefined) throw usage(`--layers: this model has layers 0-${L - 1}, got ${outside}`);
    const report = await buildReport(m3, query, passage, { maxLength, layers, lens: values.lens, attribute: values.attribute, modelName: basename(resolve(dir)) });
    html = renderPage(report);
    const lengths = report.texts.map((t) => `${t.role} ${t.tokens.length} tokens`).join(', ');
    stderr.write(`inspected ${lengths} in ${((Date.now() - started) / 1000).toFixed(1)} s; page ${(Buffer.byteLength(html) / 1e6).toFixed(2)} MB\n`);
  } finally {
    m3.dispose();
  }

  if (out !== undefined) {
    // Written beside the target and moved into place complete: a failed write never leaves half a page under
    // the final name. Without --force, a file that appeared in the meantime is not replaced.
    try {
      await writeFileAtomic(out, html, { replace: values.force === true });
    } catch (err) {
      throw new CliError((err as NodeJS.ErrnoException).code === 'EEXIST' ? `${out} exists; pass --force to overwrite it` : (err as Error).message);
    }
    stdout.write(`${out}\n`);
    return 0;
  }
  return serve(html, port, stdout, stderr, io);
});

/** "0,11,20-23" → [0, 11, 20, 21, 22, 23]; a usage error when malformed. */
function parseLayers(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw usage(`--layers must be layer indices and ranges such as 0,11,20-23, got '${spec}'`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (b < a) throw usage(`--layers: range ${a}-${b} is empty`);
    for (let i = a; i <= b && out.length <= 10_000; i++) out.push(i);
  }
  return out;
}

/** True when a request's Host header names the loopback address the page is served on (any case). */
export function hostAllowed(host: string | undefined, port: number): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase();
  const names = ['127.0.0.1', 'localhost'];
  // Browsers leave out the default port, so on port 80 the bare name is what they send.
  return names.some((n) => h === `${n}:${port}` || (port === 80 && h === n));
}

/** Serves the page on 127.0.0.1 until Ctrl-C (SIGINT), SIGTERM or io.signal. */
async function serve(html: string, port: number, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream, io: InspectIO): Promise<number> {
  const body = Buffer.from(html, 'utf8');
  const server = createServer((req, res) => {
    // DNS rebinding: a page on evil.example whose name is re-pointed at 127.0.0.1 could read the texts;
    // its requests carry `Host: evil.example`, so only the names of the bound address are answered.
    const bound = (server.address() as AddressInfo).port;
    if (!hostAllowed(req.headers.host, bound)) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end(`forbidden: Host must be 127.0.0.1:${bound} or localhost:${bound}\n`);
      return;
    }
    if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-store' });
      res.end(body);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, '127.0.0.1', () => ok());
    });
  } catch (err) {
    stderr.write(`bge-m3 inspect: cannot listen on 127.0.0.1:${port}: ${(err as Error).message}\n`);
    return 1;
  }
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  stdout.write(`Serving the inspection page at ${url} (Ctrl-C to stop)\n`);
  io.onListening?.(url);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.signal?.removeEventListener('abort', stop);
      server.closeAllConnections();
      server.close(() => done());
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (io.signal?.aborted) stop();
    else io.signal?.addEventListener('abort', stop);
  });
  return 0;
}
