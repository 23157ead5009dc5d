/**
 * `encode --out FILE`'s output on disk. Lines go to `FILE.part` beside the target; only when every
 * line is written (and synced) is it renamed to FILE, so FILE never holds a cut-off result. A run that
 * stops early (Ctrl-C, a full disk, an error) leaves `FILE.part` with the complete lines written so far,
 * which `--resume` continues; a `.part` with no complete line is removed, as there is nothing to resume.
 */
import { open, rm, truncate } from 'node:fs/promises';
import { commitFile } from '../atomic-write.js';
import { cannotWriteMessage } from '../temp-path.js';
import { CliError } from './io.js';

/** What the part file is written through; tests inject one that fails like a full disk. */
export interface WritableFile {
  /** Writes all of `text` at the end of the file (or fails, possibly after writing part of it). */
  write(text: string): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export type OpenFile = (path: string, flags: 'a' | 'w') => Promise<WritableFile>;

export const openFile: OpenFile = async (path, flags) => {
  const fh = await open(path, flags);
  return {
    // FileHandle.writeFile writes from the current position and loops until every byte is written.
    write: (text) => fh.writeFile(text),
    sync: () => fh.sync(),
    close: () => fh.close(),
  };
};

export const partPath = (target: string): string => `${target}.part`;

/** A part file's complete lines (each ending in "\n"): their count and where each ends, in bytes. */
export interface PartLines {
  /** Byte offset just past each complete line's "\n". */
  readonly ends: number[];
  /** Bytes after the last "\n": a line cut off mid-write, dropped on resume. */
  readonly cutBytes: number;
}

/** Scans a part file for complete lines, calling `check(i, line)` on each (i from 0). */
export async function scanPart(part: string, check: (i: number, line: string) => void): Promise<PartLines> {
  const ends: number[] = [];
  const fh = await open(part, 'r');
  try {
    let offset = 0; // file offset of `rest`'s first byte
    let rest = Buffer.alloc(0);
    for await (const chunk of fh.createReadStream({ autoClose: false }) as AsyncIterable<Buffer>) {
      let buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a)) {
        check(ends.length, buf.subarray(0, nl).toString('utf8'));
        offset += nl + 1;
        ends.push(offset);
        buf = buf.subarray(nl + 1);
      }
      rest = Buffer.from(buf);
    }
    return { ends, cutBytes: rest.length };
  } finally {
    await fh.close();
  }
}

/** Reads bytes [from, to) of a file as UTF-8. */
export async function readRange(path: string, from: number, to: number): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, from + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** The part file being written: `lines` complete lines so far. */
export class PartFile {
  private constructor(
    readonly target: string,
    readonly part: string,
    private readonly file: WritableFile,
    public lines: number,
  ) {}

  /** Starts an empty part file (replacing a stale one: the caller checked --force or --resume). */
  static async create(target: string, opener: OpenFile): Promise<PartFile> {
    const part = partPath(target);
    return new PartFile(target, part, await opener(part, 'w').catch((e) => { throw cannotWrite(part, e); }), 0);
  }

  /** Continues a part file after its first `lines` lines, `bytes` long: anything after is cut off. */
  static async continue(target: string, lines: number, bytes: number, opener: OpenFile): Promise<PartFile> {
    const part = partPath(target);
    try {
      await truncate(part, bytes);
      return new PartFile(target, part, await opener(part, 'a'), lines);
    } catch (e) {
      throw cannotWrite(part, e);
    }
  }

  /** Appends `count` complete lines. */
  async append(text: string, count: number): Promise<void> {
    await this.file.write(text);
    this.lines += count;
  }

  /** Syncs, closes and moves the part file to the target (an existing target only with `force`). */
  async finish(force: boolean): Promise<void> {
    await this.file.sync();
    await this.file.close();
    try {
      await commitFile(this.part, this.target, { replace: force });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      throw new CliError(`${this.target} appeared while encoding; the complete output is in ${this.part} (pass --force to replace ${this.target})`);
    }
  }

  /** After a stop: closes the file, and removes it when it holds no complete line. Returns whether it was kept. */
  async abandon(): Promise<boolean> {
    await this.file.sync().catch(() => {});
    await this.file.close().catch(() => {});
    if (this.lines > 0) return true;
    await rm(this.part, { force: true });
    return false;
  }
}

export function cannotWrite(path: string, e: unknown): CliError {
  return new CliError(cannotWriteMessage(path, e));
}
