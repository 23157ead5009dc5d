/** JSONL input as people write it: a byte-order mark, CRLF line ends, invalid UTF-8 (named, not hidden). */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJsonl } from '../../src/cli/io.js';

function file(bytes: Buffer | string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'bge-m3-jsonl-')), 'in.jsonl');
  writeFileSync(path, bytes);
  return path;
}

describe('readJsonl', () => {
  it('accepts a UTF-8 byte-order mark at the start, and CRLF line ends', async () => {
    const path = file(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"id":"a","text":"é"}\r\n\r\n{"text":"b"}')]));
    const warnings: string[] = [];
    expect(await readJsonl(path, (w) => warnings.push(w))).toEqual([{ id: 'a', text: 'é' }, { id: 3, text: 'b' }]);
    expect(warnings).toEqual([]);
  });

  it('a byte-order mark anywhere but the start is still malformed JSON, named by line', async () => {
    await expect(readJsonl(file('{"text":"a"}\n\ufeff{"text":"b"}\n'))).rejects.toThrow(/in\.jsonl:2: malformed JSON/);
  });

  it('reads invalid UTF-8 as U+FFFD and names each such line in a warning', async () => {
    const lines = [
      Buffer.from('{"id":1,"text":"ok"}\n'),
      Buffer.concat([Buffer.from('{"id":2,"text":"bad '), Buffer.from([0xff, 0xc3]), Buffer.from(' end"}\n')]),
      Buffer.from('{"id":3,"text":"日本"}\n'),
      Buffer.concat([Buffer.from('{"id":4,"text":"'), Buffer.from([0xe6, 0x97]), Buffer.from('"}')]), // cut sequence, no final newline
    ];
    const warnings: string[] = [];
    const records = await readJsonl(file(Buffer.concat(lines)), (w) => warnings.push(w));
    expect(records.map((r) => r.text)).toEqual(['ok', 'bad \ufffd\ufffd end', '日本', '\ufffd']);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/in\.jsonl:2: invalid UTF-8; the bad bytes were read as U\+FFFD/);
    expect(warnings[1]).toMatch(/in\.jsonl:4: invalid UTF-8/);
  });

  it('names the first five bad lines and counts the rest', async () => {
    const bad = Buffer.concat([Buffer.from('{"text":"'), Buffer.from([0x80]), Buffer.from('"}\n')]);
    const warnings: string[] = [];
    await readJsonl(file(Buffer.concat(Array.from({ length: 8 }, () => bad))), (w) => warnings.push(w));
    expect(warnings.slice(0, 5).map((w) => /:(\d+):/.exec(w)![1])).toEqual(['1', '2', '3', '4', '5']);
    expect(warnings[5]).toMatch(/3 more lines with invalid UTF-8 \(8 in all\)/);
    expect(warnings).toHaveLength(6);
  });

  it('multi-byte characters split across read chunks decode intact', async () => {
    const text = '日本語'.repeat(30_000); // > 64 KiB, the read stream's chunk size
    const records = await readJsonl(file(`{"text":"${text}"}\n{"text":"x"}\n`));
    expect(records.map((r) => r.text)).toEqual([text, 'x']);
  });
});
