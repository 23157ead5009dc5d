/** BgeM3's API contract: argument validation, convertIdToToken, disposal. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BgeM3 } from '../../src/m3.js';
import { checkpointDir } from '../helpers/fixtures.js';

describe('BgeM3 API on tiny-m3', () => {
  let m3: BgeM3;
  beforeAll(async () => {
    m3 = await BgeM3.load(checkpointDir('tiny-m3'));
  });
  afterAll(() => m3.dispose());

  it('convertIdToToken keys are what the Rust tokenizer decodes for each id', async () => {
    const { Tokenizer } = await import('tokenizers');
    const rust = Tokenizer.fromFile(join(checkpointDir('tiny-m3'), 'tokenizer.json'));
    const out = await m3.encode(['BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.'], { returnSparse: true });
    const lw = out.lexicalWeights![0]!;
    const tokens = m3.convertIdToToken(lw);
    const expected: Record<string, number> = {};
    for (const [id, w] of Object.entries(lw)) expected[await rust.decode([Number(id)], false)] = w;
    expect(tokens).toEqual(expected);
    expect(Object.keys(tokens).length).toBeGreaterThan(3);
    expect(m3.convertIdToToken([lw, lw])).toEqual([tokens, tokens]);
  });

  const bad: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['a non-array', () => m3.encode('text' as unknown as string[]), /inputs must be an array of strings or \{ inputIds: number\[\]\[\] \}/],
    ['a non-string text', () => m3.encode(['ok', 7 as unknown as string]), /texts\[1\] must be a string, got number/],
    ['maxLength 1', () => m3.encode(['x'], { maxLength: 1 }), /maxLength must be an integer in \[2, 8192\], got 1/],
    ['maxLength past the position table', () => m3.encode(['x'], { maxLength: 8193 }), /maxLength must be an integer in \[2, 8192\]/],
    ['batchSize 0', () => m3.encode(['x'], { batchSize: 0 }), /batchSize must be an integer/],
    ['an id outside the vocabulary', () => m3.encode({ inputIds: [[0, 99999, 2]] }), /inputIds\[0\]\[1\] = 99999 is not a token id in \[0, 8002\)/],
    ['a too-short id row', () => m3.encode({ inputIds: [[0]] }), /inputIds\[0\] must be an array of 2 to 8192 ids/],
    ['bad mode weights', () => m3.computeScore([['a', 'b']], { weightsForDifferentModes: [1, 1] }), /weightsForDifferentModes must be three finite numbers/],
    ['a malformed pair', () => m3.computeScore([['a']] as unknown as Array<[string, string]>), /pairs must be an array of \[query, passage\] string pairs/],
  ];
  it.each(bad)('rejects %s with a message naming the argument', async (_what, call, msg) => {
    await expect(call()).rejects.toThrow(msg);
  });

  it('encodes an empty list and empty text as FlagEmbedding does', async () => {
    expect((await m3.encode([])).denseVecs).toEqual([]);
    const out = await m3.encode([''], { returnSparse: true, returnColbert: true });
    expect(out.inputIds[0]).toEqual([0, 2]);
    expect(out.lexicalWeights![0]).toEqual({}); // only <s> and </s>, both dropped
    expect(out.colbertVecs![0]!.rows).toBe(1); // the </s> vector
  });

  it('refuses to run after dispose', async () => {
    const other = await BgeM3.load(checkpointDir('tiny-m3'));
    other.dispose();
    await expect(other.encode(['x'])).rejects.toThrow(/disposed/);
  });
});
