/**
 * The package as a user gets it: `npm pack` (dist/ is built by the global setup), unpacked into the
 * node_modules of a temporary project whose dependencies link to this checkout's. Checks what the
 * tarball holds, `require()` from CommonJS, `import`, `bge-m3 --version`, and which package the
 * `tensorflow` backend loads (fake @tensorflow/tfjs-node[-gpu] packages in the project).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string; license: string; dependencies: Record<string, string>; repository?: unknown;
};
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let work: string;
let tarball: string;
let files: string[];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'bge-m3-pkg-'));
  const packed = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(work, packed[0]!.filename);
  files = packed[0]!.files.map((f) => f.path);
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A project with the packed package installed (unpacked) and its dependencies linked to this checkout's. */
function project(fakes: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(work, 'project-'));
  const nm = join(dir, 'node_modules');
  const own = join(nm, 'bge-m3-tfjs');
  mkdirSync(own, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', own, '--strip-components=1']);
  for (const dep of Object.keys(pkg.dependencies)) {
    mkdirSync(dirname(join(nm, dep)), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', dep), join(nm, dep), 'dir');
  }
  for (const [name, body] of Object.entries(fakes)) {
    const at = join(nm, name);
    mkdirSync(at, { recursive: true });
    writeFileSync(join(at, 'package.json'), JSON.stringify({ name, version: '4.22.0', main: 'index.js' }));
    writeFileSync(join(at, 'index.js'), body);
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'user-project', private: true }));
  return dir;
}

const node = (cwd: string, args: string[]) => {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('the npm tarball', () => {
  it('holds LICENSE, the bench script and the bundled checkpoint, but no PyTorch twin of it and no unused sentencepiece model', () => {
    expect(files).toContain('LICENSE');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    expect(pkg.license).toBe('MIT');
    expect(files).toContain('scripts/bench_torch.py');
    expect(files).toContain('cjs/require.cjs');
    for (const f of ['config.json', 'model.safetensors', 'colbert_linear.pt', 'sparse_linear.pt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      expect(files).toContain(`test/fixtures/sharp-m3/${f}`);
    }
    expect(files.filter((f) => /pytorch_model\.bin$|sentencepiece\.bpe\.model$/.test(f))).toEqual([]);
    expect(files.filter((f) => f.startsWith('test/') && !f.startsWith('test/fixtures/sharp-m3/') && f !== 'test/fixtures/README.md')).toEqual([]);
  });
});

describe('installed from the tarball', () => {
  let dir: string;
  beforeAll(() => { dir = project(); });

  it("require('bge-m3-tfjs') says the package is ESM only and shows the import() line", () => {
    const r = node(dir, ['-e', "try { require('bge-m3-tfjs'); console.log('loaded') } catch (e) { console.log(e.code + '\\n' + e.message) }"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED|loaded/);
    expect(r.stdout).toMatch(/ES module only/);
    expect(r.stdout).toContain("await import('bge-m3-tfjs')");
  });

  it('import() from CommonJS and import from an ES module load it', () => {
    const cjs = node(dir, ['-e', "import('bge-m3-tfjs').then((m) => console.log(typeof m.BgeM3.load))"]);
    expect(cjs.code, cjs.stderr).toBe(0);
    expect(cjs.stdout.trim()).toBe('function');
    const esm = node(dir, ['--input-type=module', '-e', "import { BgeM3 } from 'bge-m3-tfjs'; console.log(typeof BgeM3.load)"]);
    expect(esm.code, esm.stderr).toBe(0);
    expect(esm.stdout.trim()).toBe('function');
  });

  it('bge-m3 --version and -V print the package version', () => {
    for (const flag of ['--version', '-V']) {
      const r = node(dir, [join(dir, 'node_modules', 'bge-m3-tfjs', 'dist', 'cli', 'main.js'), flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
    }
  });

  it('the demo runs on the bundled checkpoint and bench finds its PyTorch script inside the package', () => {
    const mod = `import { BUNDLED_CHECKPOINT, TORCH_BENCH_SCRIPT } from ${JSON.stringify(join(dir, 'node_modules', 'bge-m3-tfjs', 'dist', 'package-files.js'))};
      import { existsSync } from 'node:fs';
      console.log(existsSync(BUNDLED_CHECKPOINT + '/model.safetensors'), existsSync(TORCH_BENCH_SCRIPT), TORCH_BENCH_SCRIPT.startsWith(${JSON.stringify(dir)}));`;
    const r = node(dir, ['--input-type=module', '-e', mod]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('true true true');
  });
});

/** A fake tfjs-node package: registers the cpu kernels under the name 'tensorflow', as the real one registers its own. */
const fakeTfjsNode = (name: string) => `
const tf = require('@tensorflow/tfjs-core');
const cpu = require('@tensorflow/tfjs-backend-cpu');
tf.registerBackend('tensorflow', () => new cpu.MathBackendCPU(), 3);
for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: 'tensorflow' });
globalThis.fakeTensorflowPackage = ${JSON.stringify(name)};
`;

describe("backend 'tensorflow'", () => {
  const script = `import * as tf from '@tensorflow/tfjs-core';
    import { useBackend, tensorflowPackage } from 'bge-m3-tfjs';
    try {
      await useBackend('tensorflow');
      console.log(JSON.stringify({ backend: tf.getBackend(), from: tensorflowPackage(), fake: globalThis.fakeTensorflowPackage, sum: await tf.add([1, 2], [3, 4]).data() }));
    } catch (e) { console.log(JSON.stringify({ error: e.message })); }`;

  it('with only @tensorflow/tfjs-node-gpu installed, loads it and says so', () => {
    const dir = project({ '@tensorflow/tfjs-node-gpu': fakeTfjsNode('gpu') });
    const r = node(dir, ['--input-type=module', '-e', script]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toEqual({ backend: 'tensorflow', from: '@tensorflow/tfjs-node-gpu', fake: 'gpu', sum: { 0: 4, 1: 6 } });
    expect(r.stderr).toMatch(/backend 'tensorflow' is @tensorflow\/tfjs-node-gpu/);
  });

  it('with both installed, tries @tensorflow/tfjs-node first', () => {
    const dir = project({ '@tensorflow/tfjs-node': fakeTfjsNode('cpu'), '@tensorflow/tfjs-node-gpu': fakeTfjsNode('gpu') });
    const r = node(dir, ['--input-type=module', '-e', script]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ backend: 'tensorflow', from: '@tensorflow/tfjs-node', fake: 'cpu' });
    expect(r.stderr).toMatch(/backend 'tensorflow' is @tensorflow\/tfjs-node\b(?!-gpu)/);
  });

  it('with a broken @tensorflow/tfjs-node, falls back to -gpu; with neither, names both and why', () => {
    const broken = project({ '@tensorflow/tfjs-node': "throw new Error('libtensorflow.so: cannot open shared object file');", '@tensorflow/tfjs-node-gpu': fakeTfjsNode('gpu') });
    expect(JSON.parse(node(broken, ['--input-type=module', '-e', script]).stdout)).toMatchObject({ from: '@tensorflow/tfjs-node-gpu' });
    const none = project();
    const r = node(none, ['--input-type=module', '-e', script]);
    const { error } = JSON.parse(r.stdout) as { error: string };
    expect(error).toMatch(/@tensorflow\/tfjs-node: not installed/);
    expect(error).toMatch(/@tensorflow\/tfjs-node-gpu: not installed/);
    expect(existsSync(join(none, 'node_modules', '@tensorflow', 'tfjs-node'))).toBe(false);
  });

  it('the CLI reports which package provides it', () => {
    const dir = project({ '@tensorflow/tfjs-node-gpu': fakeTfjsNode('gpu') });
    const bin = join(dir, 'node_modules', 'bge-m3-tfjs', 'dist', 'cli', 'main.js');
    const model = join(dir, 'node_modules', 'bge-m3-tfjs', 'test', 'fixtures', 'sharp-m3');
    const r = node(dir, [bin, 'encode', '--model', model, '--dense', '--backend', 'tensorflow', 'hello']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/backend 'tensorflow' is @tensorflow\/tfjs-node-gpu/);
    expect(JSON.parse(r.stdout).dense).toHaveLength(32);
  });
});


