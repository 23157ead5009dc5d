/**
 * `bge-m3 inspect` on a fixture snapshot: writes the page, refuses to overwrite it without --force,
 * serves it on 127.0.0.1 until stopped, and rejects bad flags with exit code 2.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { hostAllowed, run } from '../../src/cli/inspect.js';
import { checkpointDir } from '../helpers/fixtures.js';

const MODEL = checkpointDir('tiny-m3');
const tmp = mkdtempSync(join(tmpdir(), 'bge-m3-inspect-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A writable stream that collects text. */
function sink(): NodeJS.WritableStream & { text: () => string } {
  const chunks: string[] = [];
  return {
    write(c: string | Uint8Array, ...rest: unknown[]) {
      chunks.push(typeof c === 'string' ? c : Buffer.from(c).toString());
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    },
    text: () => chunks.join(''),
  } as unknown as NodeJS.WritableStream & { text: () => string };
}

/** GET / on 127.0.0.1:port with a chosen Host header (none when undefined), as a rebinding page would send it. */
function getWithHost(port: number, host: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path: '/', setHost: false, headers: host === undefined ? {} : { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', fail).end();
  });
}

async function cli(argv: string[], extra: Parameters<typeof run>[1] = {}) {
  const [stdout, stderr] = [sink(), sink()];
  const code = await run(argv, { stdout, stderr, ...extra });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('bge-m3 inspect', () => {
  it('writes one page, then refuses to overwrite it unless --force', async () => {
    const out = join(tmp, 'report.html');
    const first = await cli(['--model', MODEL, 'What is BGE M3?', 'BGE M3 is an embedding model.', '--out', out]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trim()).toBe(out);
    expect(first.stderr).toMatch(/query \d+ tokens, passage \d+ tokens/);
    const html = readFileSync(out, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('BGE M3 is an embedding model.');

    writeFileSync(out, 'keep me');
    const again = await cli(['--model', MODEL, 'another query', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('--force');
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]); // the page is written beside, then moved

    const forced = await cli(['--model', MODEL, 'another query', '--out', out, '--force', '--max-length', '8', '--backend', 'cpu']);
    expect(forced.code, forced.stderr).toBe(0);
    const page = readFileSync(out, 'utf8');
    expect(page).toContain('another query');
    expect(page).not.toContain('"pair"'); // query only: no scores
    expect(statSync(out).size).toBeGreaterThan(50_000);

    const some = await cli(['--model', MODEL, 'q', 'p', '--out', join(tmp, 'layers.html'), '--layers', '1']);
    expect(some.code, some.stderr).toBe(0);
    expect(readFileSync(join(tmp, 'layers.html'), 'utf8')).toContain('"layerIds":[1]');
  });

  it('serves the page on 127.0.0.1 until stopped', async () => {
    const stop = new AbortController();
    let url = '';
    const done = cli(['--model', MODEL, 'hello', 'world', '--serve', '--port', '0'], {
      signal: stop.signal,
      onListening: (u) => {
        url = u;
      },
    });
    while (!url) await new Promise((r) => setTimeout(r, 20));
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('<!DOCTYPE html>');
    expect((await fetch(new URL('/nope', url))).status).toBe(404);
    // DNS rebinding: a request whose Host is another name (or missing) gets no page.
    const port = Number(new URL(url).port);
    expect(await getWithHost(port, `localhost:${port}`)).toMatchObject({ status: 200 });
    const noHost = await getWithHost(port, undefined); // Node's server itself answers 400 to HTTP/1.1 without Host
    expect(noHost.status).toBe(400);
    expect(noHost.body).not.toContain('hello');
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, `127.0.0.1`, `[::1]:${port}`]) {
      const forged = await getWithHost(port, host);
      expect(forged.status, String(host)).toBe(403);
      expect(forged.body).not.toContain('hello');
      expect(forged.body).toContain('Host must be');
    }
    stop.abort();
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Serving the inspection page at ${url}`);
  });

  it('hostAllowed: only the bound loopback names with the bound port (the bare name on port 80)', () => {
    expect(hostAllowed('127.0.0.1:8765', 8765)).toBe(true);
    expect(hostAllowed('LOCALHOST:8765', 8765)).toBe(true);
    expect(hostAllowed('localhost', 80)).toBe(true);
    for (const h of ['localhost', '127.0.0.1:8766', '127.0.0.1.evil.example:8765', 'evil.example:8765', '0.0.0.0:8765', '', undefined]) {
      expect(hostAllowed(h, 8765), String(h)).toBe(false);
    }
  });

  it.each([
    [['--model', MODEL, 'q', '--bogus'], /--bogus/],
    [['--model', MODEL, 'q', '--out'], /--out/],
    [['q'], /--model DIR is required/],
    [['--model', MODEL], /expected a query/],
    [['--model', MODEL, 'q', 'p', 'extra'], /got 3 texts/],
    [['--model', MODEL, 'q', '--serve', '--out', join(tmp, 'x.html')], /exclude each other/],
    [['--model', MODEL, 'q', '--port', '8080'], /--port needs --serve/],
    [['--model', MODEL, 'q', '--serve', '--port', 'http'], /--port must be an integer/],
    [['--model', MODEL, 'q', '--serve', '--port', '70000'], /--port must be an integer/],
    [['--model', MODEL, 'q', '--max-length', '1'], /--max-length must be an integer/],
    [['--model', MODEL, 'q', '--max-length', '9000', '--out', join(tmp, 'y.html')], /at most 8192/],
    [['--model', MODEL, 'q', '--backend', 'gpu'], /--backend must be one of/],
    [['--model', MODEL, 'q', '--layers', '1,x'], /--layers must be layer indices/],
    [['--model', MODEL, 'q', '--layers', '3-1'], /range 3-1 is empty/],
    [['--model', MODEL, 'q', '--layers', '0,5', '--out', join(tmp, 'w.html')], /this model has layers 0-1, got 5/],
    [['--model', MODEL, 'q', '--lens', 'bm25'], /--lens must be one of m3, m3-log1p, splade, got 'bm25'/],
    [['--model', MODEL, 'q', '--attribute', ' '], /--attribute must name a token of the query/],
  ])('usage error %j exits 2', async (argv, message) => {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('a missing model directory fails with exit 1 and says why', async () => {
    const r = await cli(['--model', join(tmp, 'no-such-model'), 'q', '--out', join(tmp, 'z.html')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no-such-model/);
    expect(existsSync(join(tmp, 'z.html'))).toBe(false);
  });

  it('--attribute with a token not in the query fails with exit 1, names the token and writes no page', async () => {
    const out = join(tmp, 'attr.html');
    const r = await cli(['--model', MODEL, 'What is BGE M3?', '--attribute', 'retrieval', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/target "retrieval" \(id \d+, ▁?retrieval\) is not in the text; its tokens are 0:<s> 1:/);
    expect(existsSync(out)).toBe(false);
  });

  it('--help prints the usage', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: bge-m3 inspect');
  });

  const bin = join(dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');
  it.skipIf(!existsSync(join(dirname(bin), 'inspect.js')))('through the bge-m3 binary (dist)', async () => {
    const out = join(tmp, 'bin.html');
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'inspect', '--model', MODEL, 'hello', '--out', out]);
    expect(stdout.trim()).toBe(out);
    expect(readFileSync(out, 'utf8')).toContain('<!DOCTYPE html>');
    const bad = await promisify(execFile)(process.execPath, [bin, 'inspect', '--nope']).then(() => 0, (e: { code: number; stderr: string }) => {
      expect(e.stderr).toContain('--nope');
      return e.code;
    });
    expect(bad).toBe(2);
  });
});
