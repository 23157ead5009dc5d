/**
 * `npm run explorer`: serves the explorer (dist/explorer/, built by `npm run build`), the browser bundle
 * it imports (dist/browser/) and the bundled fixture checkpoint (test/fixtures/sharp-m3/) at the same
 * paths as in the package, with COOP/COEP (so the page's wasm backend runs threads), and prints the URL.
 * Any static host that serves the package folder with those headers serves the same page.
 *
 *   node dist/serve/explorer.js [--port N]
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startStaticServer, type StaticServer } from './static.js';

// The package folder, from src/serve/ (tests, tsx) and from dist/serve/ (the built package) alike.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the explorer page is, under the server's URL. */
export const EXPLORER_PATH = 'dist/explorer/';

/** Starts the explorer's server; its page is at `${url}${EXPLORER_PATH}`. */
export async function startExplorer(opts: { port?: number } = {}): Promise<StaticServer & { page: string }> {
  for (const f of ['dist/explorer/index.html', 'dist/explorer/explorer.js', 'dist/browser/index.js']) {
    if (!existsSync(join(ROOT, f))) throw new Error(`${join(ROOT, f)} is missing: run \`npm run build\` first`);
  }
  const server = await startStaticServer({
    mounts: {
      '/dist/explorer/': join(ROOT, 'dist', 'explorer'),
      '/dist/browser/': join(ROOT, 'dist', 'browser'),
      '/test/fixtures/sharp-m3/': join(ROOT, 'test', 'fixtures', 'sharp-m3'),
    },
    port: opts.port,
  });
  return { ...server, page: `${server.url}${EXPLORER_PATH}` };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' } } });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: expected a port number 0 … 65535, got ${JSON.stringify(values.port)}`);
    const s = await startExplorer({ port });
    console.log(`BGE-M3 explorer: ${s.page}  (Ctrl-C to stop)`);
  } catch (e) {
    console.error(`explorer: ${(e as Error).message}`);
    process.exit(1);
  }
}
