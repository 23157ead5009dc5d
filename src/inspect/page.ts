/**
 * The inspection page as one self-contained HTML file: the report as JSON, the page script
 * (client/main.ts, compiled by `npm run build` to dist/inspect/client/main.js and inlined as a module
 * script), uPlot's script and stylesheet inlined from node_modules, and the page's CSS. It loads nothing
 * from the network.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { InspectReport } from './report.js';
import { PAGE_CSS } from './style.js';

const require = createRequire(import.meta.url);

// The same package-relative path from src/inspect/ (tests, tsx) and from dist/inspect/ (the built package).
const CLIENT_JS = new URL('../../dist/inspect/client/main.js', import.meta.url);

let clientScript: string | undefined;
/** The compiled page script, made safe to sit inside `<script>…</script>`. */
function client(): string {
  if (clientScript === undefined) {
    let js: string;
    try {
      js = readFileSync(CLIENT_JS, 'utf8');
    } catch (err) {
      throw new Error(`the inspection page's script is not built (${fileURLToPath(CLIENT_JS)}: ${(err as NodeJS.ErrnoException).code}); run \`npm run build\``);
    }
    // `</script` would end the element early; in JS source it can only sit in a string, regex or comment, where `<\/` reads the same.
    clientScript = js.replace(/<\/script/gi, '<\\/script');
    if (/<!--/.test(clientScript)) throw new Error(`${fileURLToPath(CLIENT_JS)} contains "<!--", which an inline script cannot hold`);
  }
  return clientScript;
}

/** uPlot's browser build and stylesheet, read once. */
let uplotAssets: { js: string; css: string } | undefined;
function uplot(): { js: string; css: string } {
  uplotAssets ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return uplotAssets;
}


/** `<script>` content must not contain `</script` or `<!--`; JSON may carry either inside strings. */
function scriptSafe(json: string): string {
  return json.replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The whole page for a report. */
export function renderPage(report: InspectReport): string {
  const { js, css } = uplot();
  const title = `BGE-M3 inspection: ${report.texts.map((t) => t.text).join(' / ')}`.slice(0, 120);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<header><h1>BGE-M3 inspection</h1><div id="meta"></div></header>
<div id="app"></div>
<div id="tip"></div>
<script id="report-data" type="application/json">${scriptSafe(JSON.stringify(report))}</script>
<script>${js.replace(/<\/script/gi, '<\\/script')}</script>
<script type="module">
${client()}
</script>
</body>
</html>
`;
}
