/**
 * `bge-m3 sparse cache --force` (the built binary): starts over in a folder holding a cache (the result
 * equals a pass into a new folder, file for file), and refuses, deleting nothing, a folder that holds
 * anything else.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointDir } from '../helpers/fixtures.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');
const root = mkdtempSync(join(tmpdir(), 'cache-force-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const WORDS = ['alpha', 'beta', 'gamma', 'Paris', 'Москва', '北京', 'retrieval', 'sparse'];
/** Texts of unequal lengths (and some equal), several batches of 3. */
function corpus(name: string, n: number, salt: number): string {
  const path = join(root, name);
  writeFileSync(path, Array.from({ length: n }, (_, i) => JSON.stringify({
    id: `doc-${i}`, text: Array.from({ length: 2 + ((i * salt) % 9) }, (_, j) => WORDS[(i + j + salt) % WORDS.length]).join(' '),
  })).join('\n') + '\n');
  return path;
}
const first = corpus('a.jsonl', 14, 3);
const second = corpus('b.jsonl', 11, 5);

function cache(input: string, out: string, ...more: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'sparse', 'cache', '--model', checkpointDir('tiny-m3'), '--input', input, '--out', out, '--batch-size', '3', ...more], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file of a folder tree, by relative path. */
function tree(dir: string, at = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(join(dir, at), { withFileTypes: true })) {
    const rel = join(at, e.name);
    if (e.isDirectory()) for (const [k, v] of tree(dir, rel)) out.set(k, v);
    else out.set(rel, readFileSync(join(dir, rel)));
  }
  return out;
}

describe('bge-m3 sparse cache --force', () => {
  it('replaces a cache of another corpus: the result equals a pass into a new folder', () => {
    const out = join(root, 'cache');
    expect(cache(first, out).code).toBe(0);
    const refused = cache(second, out);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/holds a different cache/);
    const forced = cache(second, out, '--force');
    expect(forced.code, forced.stderr).toBe(0);
    const fresh = join(root, 'fresh');
    expect(cache(second, fresh).code).toBe(0);
    const [a, b] = [tree(out), tree(fresh)];
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    expect([...a.keys()].filter((k) => k.startsWith('part-')).length).toBe(4); // 11 texts, batches of 3
    for (const [k, v] of b) expect(a.get(k)!.equals(v), k).toBe(true);
    // and again over the same corpus, where a plain rerun asks for --resume
    expect(cache(second, out).stderr).toMatch(/--resume/);
    expect(cache(second, out, '--force').code).toBe(0);
  });

  it('refuses a folder that is not a cache, or a cache with other files in it, deleting nothing', () => {
    const project = join(root, 'project');
    mkdirSync(join(project, 'src'), { recursive: true });
    writeFileSync(join(project, 'notes.txt'), 'my notes\n');
    writeFileSync(join(project, 'src', 'main.c'), 'int main(void) { return 0; }\n');
    const before = tree(project);
    const r = cache(first, project, '--force');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not a hidden-state cache \(no manifest\.json\); nothing was deleted/);
    expect(tree(project)).toEqual(before);

    const mixed = join(root, 'mixed');
    expect(cache(first, mixed).code).toBe(0);
    writeFileSync(join(mixed, 'notes.txt'), 'keep me\n');
    const kept = tree(mixed);
    const m = cache(second, mixed, '--force');
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/holds notes\.txt, which is not part of a hidden-state cache; nothing was deleted/);
    expect(tree(mixed)).toEqual(kept);
  });

  it('replaces a cache of another format version, but not a folder whose manifest.json is someone else\'s', () => {
    const old = join(root, 'old-version');
    expect(cache(first, old).code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(old, 'manifest.json'), 'utf8'));
    writeFileSync(join(old, 'manifest.json'), JSON.stringify({ ...manifest, version: 1 }));
    const r = cache(first, old, '--force');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(old, 'manifest.json'), 'utf8')).version).toBe(manifest.version);

    const app = join(root, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'manifest.json'), '{"name": "my web app", "start_url": "/"}\n');
    const before = tree(app);
    const refused = cache(first, app, '--force');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/manifest\.json is not a .* manifest; nothing was deleted/);
    expect(tree(app)).toEqual(before);
  });

  it('is a usage error with --resume, and with --shard', () => {
    const out = join(root, 'usage');
    const a = cache(first, out, '--force', '--resume');
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--resume .* or --force .*, not both/);
    const b = cache(first, out, '--force', '--shard', '0/2');
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--force deletes the whole cache/);
  });
});
