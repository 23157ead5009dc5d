// Builds the browser scripts of the inspection views (src/inspect/client/): type-checks them with their
// own tsconfig (DOM types; the report and model types they import belong to the Node build), then
// bundles with esbuild
//   - main.ts (+ views.ts) → dist/inspect/client/main.js, which src/inspect/page.ts inlines;
//   - explorer.ts (+ views.ts) → dist/explorer/explorer.js, beside explorer.html (as index.html), the
//     views' stylesheet (src/inspect/style.ts, from its tsc build) and uPlot's files. The explorer imports
//     the browser bundle (dist/browser/, by build-browser.mjs) at run time, so the model is not in it.
// `--check` type-checks without writing.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const clientDir = join(root, 'src', 'inspect', 'client');
const configPath = join(clientDir, 'tsconfig.json');
const entries = ['main.ts', 'views.ts', 'explorer.ts'].map((f) => join(clientDir, f));

const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail([d]) };
const config = ts.getParsedCommandLineOfConfigFile(configPath, undefined, host);
if (config.errors.length > 0) fail(config.errors);
const program = ts.createProgram(config.fileNames, { ...config.options, noEmit: true });
const diagnostics = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
for (const entry of entries) {
  const sf = program.getSourceFile(entry);
  if (!sf) fail([], `${entry} is not part of ${configPath}`);
  diagnostics.push(...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf));
}
if (diagnostics.length > 0) fail(diagnostics);

if (!process.argv.includes('--check')) {
  const common = { bundle: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'silent', legalComments: 'none' };
  await esbuild.build({ ...common, entryPoints: [join(clientDir, 'main.ts')], outfile: join(root, 'dist', 'inspect', 'client', 'main.js') });
  const out = join(root, 'dist', 'explorer');
  mkdirSync(out, { recursive: true });
  await esbuild.build({ ...common, entryPoints: [join(clientDir, 'explorer.ts')], outfile: join(out, 'explorer.js'), sourcemap: true });
  copyFileSync(join(clientDir, 'explorer.html'), join(out, 'index.html'));
  const require = createRequire(import.meta.url);
  for (const f of ['uPlot.iife.min.js', 'uPlot.min.css']) copyFileSync(require.resolve(`uplot/dist/${f}`), join(out, f));
  const { PAGE_CSS } = await import(pathToFileURL(join(root, 'dist', 'inspect', 'style.js')).href);
  writeFileSync(join(out, 'style.css'), PAGE_CSS);
}

function fail(diags, message) {
  const text = ts.formatDiagnosticsWithColorAndContext(diags, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => '\n',
  });
  process.stderr.write(`${text}${message ? `build-inspect-client: ${message}\n` : ''}`);
  process.exit(1);
}
