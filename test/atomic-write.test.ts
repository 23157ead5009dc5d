/**
 * The one atomic writer: a failed write leaves nothing under the final name and no temporary file, the
 * data and the folder are synced, an existing target is kept unless replacing is allowed, a folder swap
 * keeps the old folder on a failure; and no other `rename(` exists in src/ (a second copy fails here).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { commitFile, tempPathFor, tempTargetName, writeFileAtomic, writeFolderAtomic } from '../src/atomic-write.js';
import { runScriptInChild } from './helpers/child.js';

const root = mkdtempSync(join(tmpdir(), 'atomic-write-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** Spies on FileHandle.sync (the prototype shared by every handle) to count fsyncs. */
async function spySync(): Promise<ReturnType<typeof vi.fn>> {
  const fh = await open(join(root, '.probe'), 'w');
  const proto = Object.getPrototypeOf(fh) as { sync: () => Promise<void> };
  await fh.close();
  rmSync(join(root, '.probe'));
  return vi.spyOn(proto, 'sync') as unknown as ReturnType<typeof vi.fn>;
}

describe('writeFileAtomic', () => {
  it('writes text, replaces an existing file, syncs the file and the folder, leaves no temporary file', async () => {
    const dir = mkdtempSync(join(root, 'ok-'));
    const target = join(dir, 'sub', 'out.txt'); // a missing folder is created
    const sync = await spySync();
    await writeFileAtomic(target, 'first\n');
    expect(sync.mock.calls.length).toBeGreaterThanOrEqual(2); // the file, then the folder
    await writeFileAtomic(target, new TextEncoder().encode('second\n'));
    expect(readFileSync(target, 'utf8')).toBe('second\n');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['out.txt']);
  });

  it('a failure mid-write leaves no file under the final name and no temporary file, and names the target', async () => {
    const dir = mkdtempSync(join(root, 'fail-'));
    const target = join(dir, 'out.bin');
    let seenTmp = '';
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    await expect(writeFileAtomic(target, async (tmp) => {
      seenTmp = tmp;
      await writeFile(tmp, 'half a file');
      throw enospc;
    })).rejects.toThrow(`${target}: cannot write (ENOSPC: no space left on device)`);
    expect(seenTmp).toBe(tempPathFor(target));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a failure mid-write keeps the old file as it was', async () => {
    const dir = mkdtempSync(join(root, 'keep-'));
    const target = join(dir, 'out.txt');
    writeFileSync(target, 'precious\n');
    await expect(writeFileAtomic(target, async (tmp) => {
      await writeFile(tmp, 'half');
      throw new Error(`${target}: bad value`);
    })).rejects.toThrow(`${target}: bad value`);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(readdirSync(dir)).toEqual(['out.txt']);
  });

  it('replace: false never replaces an existing file (EEXIST), whether it was there before or appeared during the write', async () => {
    const dir = mkdtempSync(join(root, 'noreplace-'));
    const target = join(dir, 'out.txt');
    writeFileSync(target, 'precious\n');
    await expect(writeFileAtomic(target, 'new\n', { replace: false })).rejects.toMatchObject({ code: 'EEXIST' });
    const late = join(dir, 'late.txt');
    await expect(writeFileAtomic(late, async (tmp) => {
      await writeFile(tmp, 'new\n');
      writeFileSync(late, 'appeared meanwhile\n');
    }, { replace: false })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(readFileSync(late, 'utf8')).toBe('appeared meanwhile\n');
    expect(readdirSync(dir).sort()).toEqual(['late.txt', 'out.txt']);
    await writeFileAtomic(join(dir, 'fresh.txt'), 'x', { replace: false });
    expect(readFileSync(join(dir, 'fresh.txt'), 'utf8')).toBe('x');
  });

  it('commitFile syncs the file before the rename', async () => {
    const dir = mkdtempSync(join(root, 'commit-'));
    writeFileSync(join(dir, 'a.part'), 'data');
    const sync = await spySync();
    await commitFile(join(dir, 'a.part'), join(dir, 'a'));
    expect(sync.mock.calls.length).toBeGreaterThanOrEqual(2);
    expect(readdirSync(dir)).toEqual(['a']);
  });

  it('temporary names are hidden, beside the target, per process, and map back to the target', () => {
    const tmp = tempPathFor(join(root, 'x', 'part-000001.safetensors'));
    expect(relative(join(root, 'x'), tmp)).toBe(`.part-000001.safetensors.${process.pid}.tmp`);
    expect(tempTargetName(`.part-000001.safetensors.${process.pid}.tmp`)).toBe('part-000001.safetensors');
    expect(tempTargetName('part-000001.safetensors')).toBeUndefined();
  });
});

describe('writeFolderAtomic', () => {
  it('writes a folder, swaps it for an existing one, syncs its files, leaves nothing beside it', async () => {
    const dir = mkdtempSync(join(root, 'folder-'));
    const target = join(dir, 'head');
    await writeFolderAtomic(target, async (tmp) => {
      await writeFile(join(tmp, 'a.txt'), 'one');
      mkdirSync(join(tmp, 'nested'));
      await writeFile(join(tmp, 'nested', 'b.txt'), 'two');
    });
    const sync = await spySync();
    await writeFolderAtomic(target, async (tmp) => writeFile(join(tmp, 'c.txt'), 'three'));
    expect(sync.mock.calls.length).toBeGreaterThanOrEqual(3); // c.txt, the new folder, the parent
    expect(await readdir(target)).toEqual(['c.txt']);
    expect(readdirSync(dir)).toEqual(['head']);
  });

  it('a failure while filling keeps the old folder whole and leaves no temporary folder', async () => {
    const dir = mkdtempSync(join(root, 'folder-fail-'));
    const target = join(dir, 'ckpt');
    mkdirSync(target);
    writeFileSync(join(target, 'state.json'), '{"epoch":1}\n');
    await expect(writeFolderAtomic(target, async (tmp) => {
      await writeFile(join(tmp, 'state.json'), '{"ep');
      throw Object.assign(new Error('EDQUOT'), { code: 'EDQUOT' });
    })).rejects.toThrow(`${target}: cannot write (EDQUOT: disk quota exceeded)`);
    expect(readFileSync(join(target, 'state.json'), 'utf8')).toBe('{"epoch":1}\n');
    expect(readdirSync(dir)).toEqual(['ckpt']);
    expect(statSync(target).isDirectory()).toBe(true);
  });
});

describe('a signal during a folder swap', () => {
  it('puts the old folder back under its name when the process is stopped between the two renames', async () => {
    const dir = mkdtempSync(join(root, 'swap-signal-'));
    const target = join(dir, 'head');
    mkdirSync(target);
    writeFileSync(join(target, 'head.json'), 'old');
    const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
    // the child moves the folder aside as writeFolderAtomic does, then is stopped before the new one is in
    const script = `
      import { mkdirSync, renameSync } from 'node:fs';
      const { withTempPath, repairOnSignal } = await import(${JSON.stringify(join(dist, 'temp-path.js'))});
      const { putBackAside } = await import(${JSON.stringify(join(dist, 'atomic-write.js'))});
      const old = ${JSON.stringify(join(dir, '.head.old'))};
      const tmp = ${JSON.stringify(join(dir, '.head.tmp'))};
      await withTempPath(tmp, ${JSON.stringify(target)}, async () => {
        mkdirSync(tmp);
        await repairOnSignal(() => putBackAside(old, ${JSON.stringify(target)}), async () => {
          renameSync(${JSON.stringify(target)}, old);
          process.kill(process.pid, 'SIGINT');
          await new Promise((r) => setTimeout(r, 10_000));
        });
      });
      console.log('finished before the signal');
    `;
    const { stdout, signal } = await runScriptInChild(script);
    expect(stdout).toBe('');
    expect(signal).toBe('SIGINT');
    expect(readdirSync(dir)).toEqual(['head']); // the old folder is back, the temporary one gone
    expect(readFileSync(join(target, 'head.json'), 'utf8')).toBe('old');
  });
});

describe('one home for renames', () => {
  it('no file in src/ but src/atomic-write.ts renames or makes its own temporary names', () => {
    const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (/\.(ts|js|mjs)$/.test(e.name)) files.push(join(d, e.name));
      }
    };
    walk(src);
    const offenders: string[] = [];
    for (const f of files) {
      const rel = relative(src, f);
      if (rel === 'atomic-write.ts') continue;
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        // rename / renameSync calls, and temporary names of the `.tmp`, `.partial` kinds made by hand
        if (/\brename(Sync)?\s*\(|\.tmp\b[^(]|\btmp-\$\{|\.partial\b`/.test(line)) offenders.push(`src/${rel}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
    expect(existsSync(join(src, 'atomic-write.ts'))).toBe(true);
  });
});
