/**
 * The layers of src/, lowest first: formats (weights/, tokenizer/, hub/) -> runtime and kernels ->
 * weight tree, hooks and batches -> model -> heads -> facade (m3.ts, attribution/) -> lab / inspect / CLI.
 * A file may import its own layer or a lower one, never a higher one; and the textbook model
 * (src/model/ without fast/) imports nothing from the fast op set, the kernels or the runtime.
 * Every relative import is read, `import type` included (a type still ties the layers together).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** [layer, pattern over the path relative to src/]; the first match names a file's layer. */
const LAYERS: Array<[string, RegExp]> = [
  ['base', /^(config|rng|tfjs-api|temp-path|atomic-write|utf8-lines|package-files)\.ts$|^host\/(files|env)\b/],
  ['formats', /^(weights|tokenizer|hub)\/|^tokenizer\.ts$|^host\/(file-source|model-folder)\b/],
  ['runtime', /^(runtime|kernels|host|browser)\/|^backend\.ts$/], // host/: the browser variants of runtime/ and kernels/ files, and gpu.ts; browser/: files that sit next to the bundle
  ['weight tree', /^model\/params\.ts$|^hooks\/|^batches\.ts$/],
  ['model', /^model\/|^run-encoder\.ts$/],
  ['heads', /^heads\/|^scores\.ts$/],
  ['facade', /^m3\.ts$|^attribution\//], // m3.attribute is part of the facade's API
  ['uses', /^(lab|inspect|cli|bench|serve)\/|^(explain|index|browser)\.ts$/],
];
const TEXTBOOK = /^model\/(?!fast\/)/;
const NOT_FOR_TEXTBOOK = /^(model\/fast|runtime|kernels)\/|^backend\.ts$/;

function layerOf(file: string): number {
  const k = LAYERS.findIndex(([, re]) => re.test(file));
  if (k < 0) throw new Error(`src/${file} is in no layer: add it to LAYERS in test/layers/imports.test.ts`);
  return k;
}

function sources(dir = ''): string[] {
  return readdirSync(join(SRC, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) return rel === 'inspect/client' ? [] : sources(rel); // the page's script, bundled on its own
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

/** The relative imports of one file, as paths relative to src/ (`.js` specifiers name `.ts` files). */
export function importsOf(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm)].map((m) => m[1]!);
  return specs.map((s) => posix.normalize(posix.join(posix.dirname(file), s)).replace(/\.js$/, '.ts'));
}

/** Every import that runs the wrong way, as `from -> to (why)`. */
export function wrongWay(files: Map<string, string>): string[] {
  const bad: string[] = [];
  for (const [file, text] of files) {
    for (const to of importsOf(file, text)) {
      if (to.startsWith('..')) { bad.push(`${file} -> ${to} (outside src/)`); continue; }
      const [a, b] = [layerOf(file), layerOf(to)];
      if (b > a) bad.push(`${file} -> ${to} (${LAYERS[a]![0]} imports ${LAYERS[b]![0]})`);
      else if (TEXTBOOK.test(file) && NOT_FOR_TEXTBOOK.test(to)) bad.push(`${file} -> ${to} (the textbook model imports speed code)`);
    }
  }
  return bad;
}

describe('import direction', () => {
  it('no file of src/ imports a higher layer; the textbook model imports no kernels, runtime or fast ops', () => {
    const files = new Map(sources().map((f) => [f, readFileSync(join(SRC, f), 'utf8')]));
    expect(files.size).toBeGreaterThan(50);
    const bad = wrongWay(files);
    if (bad.length) console.log(`wrong-way imports:\n  ${bad.join('\n  ')}`);
    expect(bad).toEqual([]);
  });

  it('the checker sees each kind of wrong-way import', () => {
    const files = new Map([
      ['hooks/cache.ts', "import type { Batch } from '../model/encoder.js';"],
      ['model/params.ts', "import { openDirectReader } from '../runtime/heap-load.js';"],
      ['model/layer.ts', "export { x } from './fast/ops.js';\nconst k = await import('../kernels/index.js');"],
      ['weights/snapshot.ts', "import {\n  expectedShapes,\n} from '../model/params.js';"],
      ['heads/sparse.ts', "import '../m3.js';"],
      ['m3.ts', "import { planBatches } from './batches.js';"], // downward: fine
    ]);
    expect(wrongWay(files)).toEqual([
      'hooks/cache.ts -> model/encoder.ts (weight tree imports model)',
      'model/params.ts -> runtime/heap-load.ts (the textbook model imports speed code)',
      'model/layer.ts -> model/fast/ops.ts (the textbook model imports speed code)',
      'model/layer.ts -> kernels/index.ts (the textbook model imports speed code)',
      'weights/snapshot.ts -> model/params.ts (formats imports weight tree)',
      'heads/sparse.ts -> m3.ts (heads imports facade)',
    ]);
  });
});
