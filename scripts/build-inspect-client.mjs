// Compiles the inspection page's browser script (src/inspect/client/main.ts) with its own tsconfig
// (DOM types, ES module output) to dist/inspect/client/main.js, which src/inspect/page.ts inlines.
// Only main.ts is checked and emitted: the report types it imports belong to the Node build.
// `--check` type-checks without writing.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const configPath = join(root, 'src', 'inspect', 'client', 'tsconfig.json');
const entry = join(root, 'src', 'inspect', 'client', 'main.ts');

const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => fail([d]) };
const config = ts.getParsedCommandLineOfConfigFile(configPath, undefined, host);
if (config.errors.length > 0) fail(config.errors);
const program = ts.createProgram(config.fileNames, config.options);
const main = program.getSourceFile(entry);
if (!main) fail([], `${entry} is not part of ${configPath}`);
const diagnostics = [
  ...program.getOptionsDiagnostics(),
  ...program.getGlobalDiagnostics(),
  ...program.getSyntacticDiagnostics(main),
  ...program.getSemanticDiagnostics(main),
];
if (diagnostics.length > 0) fail(diagnostics);
if (!process.argv.includes('--check')) {
  const result = program.emit(main);
  if (result.emitSkipped || result.diagnostics.length > 0) fail(result.diagnostics, 'emit failed');
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
