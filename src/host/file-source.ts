/** A weight file by its path, as a byte source (weights/source.ts): the Node host; see files.ts. */
import { open } from 'node:fs/promises';
import { WeightFileError } from '../weights/types.js';
import { byteSource, type ByteSource } from '../weights/source.js';

/** A file opened for positional reads; its size is taken when opened. */
export async function openFileSource(path: string): Promise<ByteSource> {
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new WeightFileError(path, `cannot open (${e.code ?? e.message})`);
  });
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (e) {
    await fh.close();
    throw new WeightFileError(path, `cannot stat (${(e as Error).message})`);
  }
  return byteSource(path, size, async (position, length, what, out) => {
    let done = 0;
    while (done < length) {
      // fs reads are capped near 2 GB per call, and 64 MB reads are measurably faster than one huge read.
      const chunk = Math.min(length - done, 64 << 20);
      const { bytesRead } = await fh.read(out(), done, chunk, position + done);
      if (bytesRead === 0) {
        throw new WeightFileError(path, `${what}: file ends after ${position + done} bytes (needed ${length} bytes at offset ${position}; truncated?)`);
      }
      done += bytesRead;
    }
  }, () => fh.close());
}
