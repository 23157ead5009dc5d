/**
 * The `bge-m3` binary end to end (dist/ is built by the global setup): encode and score against the
 * reference on one checkpoint, a snapshot with only pytorch_model.bin, convert, and bad input.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkpointDir } from '../helpers/fixtures.js';
import { ErrorLog, loadCases, maxAbsDiff, Reference, sparseMaxAbsDiff } from '../helpers/reference.js';
import { openSafetensors } from '../../src/weights/safetensors.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');
const CKPT = 'sharp-m3' as const;
const cases = loadCases();
const tmp = () => mkdtempSync(join(tmpdir(), 'bge-m3-cli-'));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of a fixture snapshot without some of its files. */
function snapshotWithout(skip: string[]): string {
  const dir = tmp();
  for (const f of readdirSync(checkpointDir(CKPT))) if (!skip.includes(f)) copyFileSync(join(checkpointDir(CKPT), f), join(dir, f));
  return dir;
}

function writeJsonl(records: unknown[]): string {
  const path = join(tmp(), 'in.jsonl');
  writeFileSync(path, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return path;
}

describe('bge-m3 encode', () => {
  const short = cases.filter((c) => c.max_length === 8192 && c.id !== 'long_3k');

  async function checkAgainstReference(stdout: string, label: string): Promise<void> {
    const ref = await Reference.open(CKPT);
    const log = new ErrorLog(`CLI encode (${label})`);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual(short.map((c) => c.id)); // input order, nothing dropped
    for (const [i, c] of short.entries()) {
      const l = lines[i];
      expect(l.input_ids, c.id).toEqual(c.input_ids);
      expect(log.add('dense', maxAbsDiff(l.dense, (await ref.tensor(c.id, 'dense_head.hook_out')).data))).toBeLessThanOrEqual(1e-4);
      expect(log.add('lexical_weights', sparseMaxAbsDiff(l.lexical_weights, ref.json.cases[c.id]!.lexical_weights))).toBeLessThanOrEqual(1e-4);
      expect(l.colbert.length).toBe(c.input_ids.length - 1);
      expect(log.add('colbert', maxAbsDiff(l.colbert.flat(), (await ref.tensor(c.id, 'colbert_head.hook_out')).data))).toBeLessThanOrEqual(1e-4);
    }
    log.print();
    await ref.close();
  }

  it('encodes a JSONL file in input order, matching the reference (model.safetensors)', async () => {
    const input = writeJsonl(short.map((c) => ({ id: c.id, text: c.text })));
    const out = join(tmp(), 'out.jsonl');
    const r = cli(['encode', '--model', checkpointDir(CKPT), '--input', input, '--out', out, '--batch-size', '4']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await checkAgainstReference(readFileSync(out, 'utf8'), 'model.safetensors');
  });

  it('works on a snapshot that has only pytorch_model.bin and .pt heads', async () => {
    const dir = snapshotWithout(['model.safetensors']);
    const input = writeJsonl(short.map((c) => ({ id: c.id, text: c.text })));
    const r = cli(['encode', '--model', dir, '--input', input]);
    expect(r.code, r.stderr).toBe(0);
    await checkAgainstReference(r.stdout, 'pytorch_model.bin');
  });

  it('writes only the requested outputs; TEXT arguments get their index as id', () => {
    const r = cli(['encode', '--model', checkpointDir(CKPT), '--sparse', 'What is BGE M3?', 'Defination of BM25']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => Object.keys(l).sort())).toEqual([['id', 'input_ids', 'lexical_weights'], ['id', 'input_ids', 'lexical_weights']]);
    expect(lines.map((l) => l.id)).toEqual([0, 1]);
    expect(lines[0].input_ids).toEqual(cases.find((c) => c.id === 'readme_q1')!.input_ids);
  });

  it('applies --max-length with right truncation keeping </s>', () => {
    const c = cases.find((x) => x.id === 'trunc_en_64')!;
    const r = cli(['encode', '--model', checkpointDir(CKPT), '--dense', '--max-length', String(c.max_length), c.text]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).input_ids).toEqual(c.input_ids);
  });

  const bad: Array<[string, () => string[], RegExp, number]> = [
    ['an unknown flag', () => ['encode', '--model', checkpointDir(CKPT), '--densee', 'x'], /--densee/, 2],
    ['no input', () => ['encode', '--model', checkpointDir(CKPT)], /nothing to encode/, 2],
    ['a model dir without weights', () => ['encode', '--model', snapshotWithout(['model.safetensors', 'pytorch_model.bin']), 'x'], /no encoder weights.*model\.safetensors, pytorch_model\.bin/, 1],
    ['a missing model dir', () => ['encode', '--model', '/nonexistent/snapshot', 'x'], /\/nonexistent\/snapshot/, 1],
    ['a malformed JSONL line', () => { const p = join(tmp(), 'bad.jsonl'); writeFileSync(p, '{"id":1,"text":"a"}\n{"id":2,"text":"b"}\n{"id":3,text:\n'); return ['encode', '--model', checkpointDir(CKPT), '--input', p]; }, /bad\.jsonl:3: malformed JSON/, 1],
    ['a non-string text', () => ['encode', '--model', checkpointDir(CKPT), '--input', writeJsonl([{ id: 'a', text: 'ok' }, { id: 'b', text: 42 }])], /in\.jsonl:2: "text" must be a string, got number/, 1],
    ['a bad --max-length', () => ['encode', '--model', checkpointDir(CKPT), '--max-length', '1', 'x'], /--max-length must be an integer >= 2/, 2],
    ['a --max-length over the model limit', () => ['encode', '--model', checkpointDir(CKPT), '--max-length', '9000', 'x'], /--max-length 9000 is more than this model allows: its position table holds 8192 tokens/, 1],
  ];
  it.each(bad)('exits non-zero on %s, naming the problem', (_what, args, msg, code) => {
    const r = cli(args());
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr).not.toMatch(/Emscripten|WasmBackendModule/); // no module dump on errors
    expect(r.stdout).toBe('');
  });

  it('never overwrites an existing --out without --force', () => {
    const out = join(tmp(), 'out.jsonl');
    writeFileSync(out, 'precious\n');
    const r = cli(['encode', '--model', checkpointDir(CKPT), '--out', out, 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exists; pass --force/);
    expect(readFileSync(out, 'utf8')).toBe('precious\n');
    expect(cli(['encode', '--model', checkpointDir(CKPT), '--out', out, '--force', 'x']).code).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8')).id).toBe(0);
  });
});

describe('bge-m3 score', () => {
  it('prints every score matrix of the reference, queries × passages', async () => {
    const ref = await Reference.open(CKPT);
    const s = ref.json.scores;
    const byId = new Map(cases.map((c) => [c.id, c]));
    const file = (ids: string[]) => writeJsonl(ids.map((id) => ({ id, text: byId.get(id)!.text })));
    const log = new ErrorLog('CLI score');
    for (const w of s.weighted) {
      const r = cli(['score', '--model', checkpointDir(CKPT), '--queries', file(s.queries), '--passages', file(s.passages),
        '--weights', w.weights.join(','), '--max-query-length', '8192']);
      expect(r.code, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout);
      expect(got.queries).toEqual(s.queries);
      expect(got.passages).toEqual(s.passages);
      for (const [k, want] of [['dense', s.dense], ['sparse', s.sparse], ['colbert', s.colbert],
        ['sparse+dense', w['sparse+dense']], ['colbert+sparse+dense', w['colbert+sparse+dense']]] as const) {
        expect(got[k].length).toBe(s.queries.length);
        expect(log.add(k, maxAbsDiff(got[k].flat(), want.flat())), k).toBeLessThanOrEqual(1e-4);
      }
    }
    log.print();
    await ref.close();
  });

  it('rejects bad --weights and missing files', () => {
    const q = writeJsonl([{ id: 1, text: 'a' }]);
    expect(cli(['score', '--model', checkpointDir(CKPT), '--queries', q, '--passages', q, '--weights', '1,2']).stderr).toMatch(/--weights must be three finite numbers/);
    const r = cli(['score', '--model', checkpointDir(CKPT), '--queries', q, '--passages', '/nonexistent.jsonl']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\/nonexistent\.jsonl: no such file/);
  });
});

describe('bge-m3 convert', () => {
  it('writes safetensors bit-identical to the reference file, keys and dtypes unchanged, and never overwrites without --force', async () => {
    const dir = snapshotWithout(['model.safetensors']);
    const r = cli(['convert', dir]);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['model.safetensors', 'colbert_linear.safetensors', 'sparse_linear.safetensors']) expect(existsSync(join(dir, f))).toBe(true);
    const ours = await openSafetensors(join(dir, 'model.safetensors'));
    const theirs = await openSafetensors(join(checkpointDir(CKPT), 'model.safetensors'));
    expect(ours.keys().sort()).toEqual(theirs.keys().sort());
    for (const k of theirs.keys()) {
      const [a, b] = [await ours.readRaw(k), await theirs.readRaw(k)];
      expect(a.dtype).toBe(b.dtype);
      expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes)), k).toBe(true);
    }
    await Promise.all([ours.close(), theirs.close()]);
    const sparse = await openSafetensors(join(dir, 'sparse_linear.safetensors'));
    expect(sparse.keys().sort()).toEqual(['bias', 'weight']);
    expect(sparse.info('weight').dtype).toBe('F16');
    await sparse.close();

    const before = readFileSync(join(dir, 'model.safetensors'));
    const again = cli(['convert', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exist.*--force/);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(before)).toBe(true);
    expect(cli(['convert', dir, '--force']).code).toBe(0);
    // The converted snapshot (safetensors heads preferred) still encodes like the original.
    const e1 = cli(['encode', '--model', dir, 'What is BGE M3?']);
    const e2 = cli(['encode', '--model', checkpointDir(CKPT), 'What is BGE M3?']);
    expect(e1.stdout).toBe(e2.stdout);
  });

  it('names the file when there is nothing to convert', () => {
    const r = cli(['convert', snapshotWithout(['pytorch_model.bin', 'colbert_linear.pt', 'sparse_linear.pt'])]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no PyTorch files to convert/);
  });
});

describe('bge-m3', () => {
  it('unknown command exits 2 and lists the commands', () => {
    const r = cli(['encodee']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'encodee'/);
    expect(r.stderr).toMatch(/encode/);
  });

  it('demo runs on the bundled checkpoint and says its weights are random', () => {
    const r = cli(['demo']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/RANDOM/);
    expect(r.stdout).toMatch(/ColBERT score/);
  });
});
