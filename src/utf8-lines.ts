/**
 * Lines of UTF-8 text files, for every reader of user files (encode's JSONL input, the BEIR reader): invalid
 * UTF-8 is never replaced silently, the lines that had it are named in warnings.
 */
import { createReadStream } from 'node:fs';

/**
 * The lines of a UTF-8 text file (standard input when `path` is "-"), split on "\n" (a trailing "\r" is
 * dropped), with their 1-based numbers.
 * A byte-order mark at the start is skipped, as JSON readers do. Invalid UTF-8 is decoded as U+FFFD and
 * reported through `onInvalid` with the line's number, never replaced silently.
 */
export async function* readLines(path: string, onInvalid: (line: number) => void): AsyncGenerator<[number, string]> {
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const lenient = new TextDecoder('utf-8', { ignoreBOM: true });
  let n = 0;
  const decode = (bytes: Buffer): string => {
    n++;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1);
    if (n === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    try {
      return strict.decode(bytes);
    } catch {
      onInvalid(n);
      return lenient.decode(bytes);
    }
  };
  // "\n" never occurs inside a multi-byte UTF-8 sequence, so splitting the raw bytes on it is safe.
  let rest = Buffer.alloc(0);
  for await (const chunk of chunksOf(path)) {
    let buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a)) {
      const text = decode(buf.subarray(0, nl));
      yield [n, text];
      buf = buf.subarray(nl + 1);
    }
    rest = Buffer.from(buf);
  }
  if (rest.length > 0) {
    const text = decode(rest);
    yield [n, text];
  }
}

/** The bytes of a file, or of standard input for "-"; a failure to read names the file (Node's EISDIR, EACCES … name none). */
async function* chunksOf(path: string): AsyncGenerator<Buffer> {
  const stdin = path === '-';
  const name = stdin ? '<stdin>' : path;
  try {
    for await (const chunk of (stdin ? process.stdin : createReadStream(path)) as AsyncIterable<Buffer | string>) {
      yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new Error(`${name}: is a folder, expected a file`);
    throw new Error(`${name}: cannot read (${code ?? (e as Error).message})`);
  }
}

/** Lines named one by one in warnings before the rest are only counted. */
const WARN_LINES = 5;

/** Warns about the lines of `path` that held invalid UTF-8 (read as U+FFFD), naming the first few. */
export function warnInvalidUtf8(path: string, invalid: readonly number[], onWarning: (message: string) => void): void {
  for (const l of invalid.slice(0, WARN_LINES)) onWarning(`${path}:${l}: invalid UTF-8; the bad bytes were read as U+FFFD`);
  if (invalid.length > WARN_LINES) onWarning(`${path}: ${invalid.length - WARN_LINES} more lines with invalid UTF-8 (${invalid.length} in all)`);
}
