/**
 * Hostile `data.pkl` structures that used to hang the reader or take gigabytes: dict cycles, shared
 * dicts, and pickle bombs (DUP, MARK, memo, repeated copies of a memoized list). Each must be refused
 * with an error naming the file and the fault; what real torch files share (one tensor under two
 * names, one storage under several tensors) must keep working.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTorchCheckpoint } from '../../src/weights/torch.js';
import { WeightFileError } from '../../src/weights/types.js';
import { PickleWriter, ZipWriter, f32Bytes } from '../helpers/torch-writer.js';

/** A torch-style archive whose data.pkl is `pickle` (deflated when asked), with one float storage '0' = [1, 2, 3, 4]. */
async function archive(pickle: Uint8Array, deflate = false): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'hostile-')), 'ckpt.pt');
  const z = await ZipWriter.create(path);
  await z.add('archive/data.pkl', pickle.byteLength, pickle, { deflate });
  await z.add('archive/data/0', 16, f32Bytes([1, 2, 3, 4]));
  await z.add('archive/version', 2, new TextEncoder().encode('3\n'));
  await z.finish();
  return path;
}

/** Opens `path`, expects a WeightFileError matching every pattern, and prints it with the time taken. */
async function refused(label: string, path: string, ...patterns: RegExp[]): Promise<void> {
  const t0 = performance.now();
  let err: unknown;
  try { await openTorchCheckpoint(path); } catch (e) { err = e; }
  const ms = performance.now() - t0;
  expect(err, `${label}: expected a refusal`).toBeInstanceOf(WeightFileError);
  const msg = (err as Error).message;
  expect(msg).toMatch(/ckpt\.pt/);
  for (const re of patterns) expect(msg).toMatch(re);
  console.log(`${label}: refused in ${ms.toFixed(0)} ms: ${msg}`);
}

/** The POP opcode (the writer has no method for it). */
const POP = [0x30];

/** Pushes `collections.OrderedDict()` (an empty dict made the way torch makes one). */
const orderedDict = (p: PickleWriter): PickleWriter => p.global('collections', 'OrderedDict').tupleN(0).reduce();

/** Pushes `_rebuild_tensor_v2(storage '0' (4 floats), offset, size [n], stride [1], False, OrderedDict())`. */
function tensor(p: PickleWriter, offset: number, n: number): PickleWriter {
  p.global('torch._utils', '_rebuild_tensor_v2').mark();
  p.mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(4).tuple().binpersid();
  p.int(offset).int(n).tupleN(1).int(1).tupleN(1).bool(false);
  return orderedDict(p).tuple().reduce();
}

/** A pickle of `n` bytes: PROTO 2, EMPTY_DICT, then `op` repeated, then STOP. */
function repeated(op: number, mib: number): Uint8Array {
  const b = new Uint8Array(mib * 1024 * 1024 + 4);
  b.set([0x80, 2, 0x7d]);
  b.fill(op, 3);
  b[b.length - 1] = 0x2e;
  return b;
}

describe('hostile pickles: cycles and shared dicts', () => {
  it("refuses d = {'state_dict': d} and two wrappers pointing at each other (used to spin forever)", async () => {
    const self = new PickleWriter().proto(2).emptyDict().put().str('state_dict').get(0).setitem().stop().bytes();
    await refused('self wrapper', await archive(self), /dict 'state_dict' leads back/, /cycle/);
    // {'model': {'state_dict': <root>}}
    const mutual = new PickleWriter().proto(2).emptyDict().put().str('model').emptyDict().str('state_dict').get(0)
      .setitem().setitem().stop().bytes();
    await refused('mutual wrappers', await archive(mutual), /dict 'model\.state_dict' leads back/, /cycle/);
    // A cycle below the tensors: {'w': tensor, 'sub': {'back': <root>}}
    const deep = tensor(new PickleWriter().proto(2).emptyDict().put().str('w'), 0, 4).setitem()
      .str('sub').emptyDict().str('back').get(0).setitem().setitem().stop().bytes();
    await refused('cycle under the tensors', await archive(deep), /dict 'sub\.back' contains itself/);
  });

  it('refuses a shared sub-dict, and a doubling chain of them that would otherwise be walked 2^30 times', async () => {
    // {'a': s, 'b': s} with s = {'w': tensor}
    const shared = new PickleWriter().proto(2).emptyDict().str('a').emptyDict().put().str('w');
    tensor(shared, 0, 4).setitem().setitem().str('b').get(0).setitem().stop();
    await refused('shared sub-dict', await archive(shared.bytes()), /dict 'b' is the same dict as dict 'a'/);
    // d30 = {'w': tensor}; d_k = {'a': d_{k+1}, 'b': d_{k+1}}: 30 levels, 2^30 paths to the tensor.
    const p = new PickleWriter().proto(2).emptyDict().str('w');
    tensor(p, 0, 4).setitem().put().raw(POP);
    for (let k = 1; k <= 30; k++) {
      p.emptyDict().str('a').get(k - 1).setitem().str('b').get(k - 1).setitem().put();
      if (k < 30) p.raw(POP);
    }
    await refused('doubling chain', await archive(p.stop().bytes()), /is the same dict as/);
  });

  it('keeps what torch shares: one tensor under two names (tied weights), one storage under two tensors', async () => {
    const p = orderedDict(new PickleWriter().proto(2)).mark().str('decoder.weight');
    tensor(p, 0, 4).put(); // memo 0: the tensor object
    p.str('encoder.embed.weight').get(0).str('tail');
    tensor(p, 2, 2).setitems().stop();
    const f = await openTorchCheckpoint(await archive(p.bytes()));
    expect(f.keys()).toEqual(['decoder.weight', 'encoder.embed.weight', 'tail']);
    expect([...(await f.readFloat32('decoder.weight')).data]).toEqual([1, 2, 3, 4]);
    expect([...(await f.readFloat32('encoder.embed.weight')).data]).toEqual([1, 2, 3, 4]);
    expect([...(await f.readFloat32('tail')).data]).toEqual([3, 4]);
    await f.close();
  });
});

describe('hostile pickles: bombs are refused after bounded work', () => {
  it('refuses 8 MiB and 64 MiB of DUP opcodes deflated into a few kB (used to take seconds and GBs)', async () => {
    const dup8 = await archive(repeated(0x32, 8), true);
    await refused('8 MiB DUP bomb', dup8, /data\.pkl/, /stack deeper than \d+ values and marks/);
    const dup64 = await archive(repeated(0x32, 64), true);
    await refused('64 MiB DUP bomb', dup64, /data\.pkl' is 67108868 bytes, more than the 16777216-byte limit/);
  });

  it('refuses a MARK bomb, a memo bomb and repeated copies of one memoized list', async () => {
    await refused('MARK bomb', await archive(repeated(0x28, 1), true), /stack deeper than/);
    // 2^19 + 1 distinct memo slots, each a 5-byte LONG_BINPUT of the same None.
    const memo = new PickleWriter().proto(2).none();
    for (let i = 0; i <= 1 << 19; i++) memo.put();
    await refused('memo bomb', await archive(memo.raw(POP).emptyDict().stop().bytes(), true), /memo index 524288 is beyond the 524288 entries/);
    // L = 1000 pairs, memoized; then OrderedDict(L) 3000 times: 3 million copies from ~15 kB of opcodes.
    const copies = new PickleWriter().proto(2).emptyList().put().mark();
    for (let i = 0; i < 1000; i++) copies.int(i).int(i).tupleN(2);
    copies.appends().global('collections', 'OrderedDict').put().raw(POP);
    for (let i = 0; i < 3000; i++) copies.get(1).get(0).tupleN(1).reduce().raw(POP);
    await refused('copy bomb', await archive(copies.emptyDict().stop().bytes()), /builds more than \d+ container items/);
  });
});
