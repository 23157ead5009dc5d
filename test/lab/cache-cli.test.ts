/**
 * `bge-m3 sparse cache` (the built binary): a pass killed with SIGKILL half-way and resumed ends
 * with exactly the files of an uninterrupted pass; usage errors name their flag.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openHiddenCache } from '../../src/lab/hidden-cache.js';
import { checkpointDir } from '../helpers/fixtures.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');
const root = mkdtempSync(join(tmpdir(), 'cache-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'Paris', 'Москва', '北京', 'retrieval', 'sparse', 'lexical', 'weight', 'model'];
const N = 40;
const input = join(root, 'texts.jsonl');
writeFileSync(input, Array.from({ length: N }, (_, i) => JSON.stringify({
  id: `doc-${i}`, text: Array.from({ length: 3 + ((i * 7) % 40) }, (_, j) => WORDS[(i + j * j) % WORDS.length]).join(' '),
})).join('\n') + '\n');
const args = (out: string, ...more: string[]) => [BIN, 'sparse', 'cache', '--model', checkpointDir('tiny-m3'), '--input', input, '--out', out, '--batch-size', '2', ...more];
const parts = (dir: string) => readdirSync(dir).filter((f) => /^part-\d+\.safetensors$/.test(f));

function files(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f))]));
}

/** Starts a pass and SIGKILLs it once `atLeast` parts are on disk; resolves with the parts seen then. */
function runAndKill(out: string, atLeast: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args(out), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setInterval(() => {
      let n = 0;
      try {
        n = parts(out).length;
      } catch { /* not created yet */ }
      if (n >= atLeast) {
        child.kill('SIGKILL');
        clearInterval(timer);
      }
    }, 5);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      if (signal === 'SIGKILL') resolve(parts(out).length);
      else reject(new Error(`the pass ended before it was killed (code ${code}): ${stderr}`));
    });
  });
}

describe('bge-m3 sparse cache', () => {
  it('a pass killed half-way (SIGKILL) and resumed equals an uninterrupted pass, file for file', async () => {
    const whole = join(root, 'whole');
    const r1 = spawnSync(process.execPath, args(whole), { encoding: 'utf8' });
    expect(r1.stderr).toBe('');
    expect(r1.status).toBe(0);
    const total = JSON.parse(r1.stdout).batches as number;
    expect(total).toBe(N / 2);

    const cut = join(root, 'cut');
    const seen = await runAndKill(cut, 3);
    console.log(`killed with ${seen} of ${total} parts written`);
    expect(seen).toBeLessThan(total);
    // What a crash mid-write leaves: a half-written part under its temporary name.
    writeFileSync(join(cut, `.part-${String(total - 1).padStart(6, '0')}.safetensors.999999.tmp`), 'half a file');
    await expect(openHiddenCache(cut)).rejects.toThrow(/cache incomplete/);
    const again = spawnSync(process.execPath, args(cut), { encoding: 'utf8' });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already holds parts of this cache's shard 0\/1; pass --resume/);

    const r2 = spawnSync(process.execPath, args(cut, '--resume'), { encoding: 'utf8' });
    expect(r2.status).toBe(0);
    const res = JSON.parse(r2.stdout);
    expect(res.kept).toBeGreaterThanOrEqual(seen);
    expect(res.kept + res.written).toBe(total);
    expect(files(cut)).toEqual(files(whole));
  });

  it('usage errors name the flag', () => {
    const bad = (extra: string[], msg: RegExp) => {
      const r = spawnSync(process.execPath, [BIN, 'sparse', 'cache', ...extra], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(msg);
    };
    bad(['--model', 'm', '--input', input], /--out DIR is required/);
    bad(['--model', 'm', '--out', 'o'], /give exactly one of --beir DIR or --input/);
    bad(['--model', 'm', '--out', 'o', '--input', input, '--shard', '3/3'], /--shard: shard must be i\/n with 0 <= i < n, got "3\/3"/);
    bad(['--model', 'm', '--out', 'o', '--input', input, '--layer', 'x'], /--layer must be an integer >= 0, got 'x'/);
    bad(['--model', 'm', '--out', 'o', '--input', input, '--bogus'], /Unknown option '--bogus'/);
    const sub = spawnSync(process.execPath, [BIN, 'sparse', 'nope'], { encoding: 'utf8' });
    expect(sub.status).toBe(2);
    expect(sub.stderr).toMatch(/unknown subcommand 'nope'/);
  });
});
