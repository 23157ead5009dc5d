/**
 * Minimal read-only zip directory parser for `torch.save` archives.
 *
 * Only what a checkpoint needs: the (zip64-aware) central directory, and the absolute file offset of
 * an entry's data so it can be read in place with positional reads. Nothing is ever extracted or
 * inflated here; callers decide what to do with compressed entries (torch stores everything
 * uncompressed).
 */
import type { ByteSource } from './source.js';
import { WeightFileError } from './types.js';

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflate, ... */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** Absolute offset of the local file header. */
  readonly localHeaderOffset: number;
}

export interface ZipDirectory {
  /** Entries in central-directory order. */
  readonly entries: readonly ZipEntry[];
  readonly byName: ReadonlyMap<string, ZipEntry>;
  readonly zip64: boolean;
}

const EOCD_SIG = 0x06054b50;
const EOCD64_SIG = 0x06064b50;
const EOCD64_LOCATOR_SIG = 0x07064b50;
const CDIR_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_MIN = 22;
const MAX_COMMENT = 0xffff;

/** Reads exactly `length` bytes at `position` of `src`; throws naming `what` if the source ends first. */
export function readExactly(src: ByteSource, position: number, length: number, what: string, into?: Uint8Array): Promise<Uint8Array> {
  return src.read(position, length, what, into ? () => into : undefined);
}

function u64(dv: DataView, off: number, file: string, what: string): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new WeightFileError(file, `zip: ${what} ${v} is out of range`);
  return Number(v);
}

/**
 * Parses the central directory of the zip archive `src` (a file, a Blob, a URL read by ranges).
 * Errors (not a zip, truncated, inconsistent directory, encrypted or split archives) are WeightFileErrors naming it.
 */
export async function readZipDirectory(src: ByteSource): Promise<ZipDirectory> {
  const [file, fileSize] = [src.name, src.size];
  if (fileSize < EOCD_MIN) throw new WeightFileError(file, `not a zip archive (only ${fileSize} bytes)`);
  const tailLen = Math.min(fileSize, EOCD_MIN + MAX_COMMENT + 20);
  const tailStart = fileSize - tailLen;
  const tail = await readExactly(src, tailStart, tailLen, 'zip end of central directory');
  const tdv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);

  // The end-of-central-directory record: search backwards; prefer one whose comment reaches exactly to EOF.
  let eocd = -1;
  let fallback = -1;
  for (let i = tailLen - EOCD_MIN; i >= 0; i--) {
    if (tdv.getUint32(i, true) !== EOCD_SIG) continue;
    const commentLen = tdv.getUint16(i + 20, true);
    if (i + EOCD_MIN + commentLen === tailLen) { eocd = i; break; }
    if (fallback < 0 && i + EOCD_MIN + commentLen <= tailLen) fallback = i;
  }
  if (eocd < 0) eocd = fallback;
  if (eocd < 0) {
    const head = await readExactly(src, 0, Math.min(4, fileSize), 'file magic');
    const legacy = head[0] === 0x80 ? ' (it starts like a pickle: the legacy pre-1.6 torch.save format is not supported)' : '';
    const local = new DataView(head.buffer).getUint32(0, true) === LOCAL_SIG ? ' (it starts like a zip: truncated archive?)' : '';
    throw new WeightFileError(file, `not a zip archive or truncated: no end-of-central-directory record${legacy}${local}`);
  }

  const diskNo = tdv.getUint16(eocd + 4, true);
  const cdDisk = tdv.getUint16(eocd + 6, true);
  let count = tdv.getUint16(eocd + 10, true);
  let cdSize = tdv.getUint32(eocd + 12, true);
  let cdOffset = tdv.getUint32(eocd + 16, true);
  let zip64 = false;

  // zip64 locator sits immediately before the EOCD record.
  const locAbs = tailStart + eocd - 20;
  if (locAbs >= 0) {
    const loc = locAbs >= tailStart
      ? tail.subarray(eocd - 20, eocd)
      : await readExactly(src, locAbs, 20, 'zip64 locator');
    const ldv = new DataView(loc.buffer, loc.byteOffset, 20);
    if (ldv.getUint32(0, true) === EOCD64_LOCATOR_SIG) {
      zip64 = true;
      const recOff = u64(ldv, 8, file, 'zip64 end record offset');
      if (recOff + 56 > fileSize) throw new WeightFileError(file, `zip64 end-of-central-directory record at ${recOff} lies beyond the end of the file (truncated?)`);
      const rec = await readExactly(src, recOff, 56, 'zip64 end-of-central-directory record');
      const rdv = new DataView(rec.buffer, rec.byteOffset, 56);
      if (rdv.getUint32(0, true) !== EOCD64_SIG) throw new WeightFileError(file, `zip64 locator points at ${recOff}, which is not a zip64 end-of-central-directory record`);
      if (rdv.getUint32(16, true) !== 0 || rdv.getUint32(20, true) !== 0) throw new WeightFileError(file, 'multi-disk (split) zip archives are not supported');
      count = u64(rdv, 32, file, 'entry count');
      cdSize = u64(rdv, 40, file, 'central directory size');
      cdOffset = u64(rdv, 48, file, 'central directory offset');
    }
  }
  if (!zip64 && (diskNo !== 0 || cdDisk !== 0)) throw new WeightFileError(file, 'multi-disk (split) zip archives are not supported');
  if (!zip64 && (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff)) {
    throw new WeightFileError(file, 'zip64 archive without a zip64 end-of-central-directory locator (truncated or corrupt)');
  }
  if (cdOffset + cdSize > fileSize) {
    throw new WeightFileError(file, `zip central directory (${cdSize} bytes at ${cdOffset}) lies beyond the end of the ${fileSize}-byte file (truncated?)`);
  }
  // Each entry takes at least 46 bytes: a count beyond that is corrupt (and would otherwise drive a long loop).
  if (count * 46 > cdSize) throw new WeightFileError(file, `zip central directory claims ${count} entries in ${cdSize} bytes`);

  const cd = await readExactly(src, cdOffset, cdSize, 'zip central directory');
  const dv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const dec = new TextDecoder('utf-8');
  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || dv.getUint32(p, true) !== CDIR_SIG) {
      throw new WeightFileError(file, `zip central directory entry ${i} at ${cdOffset + p} is corrupt`);
    }
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc32 = dv.getUint32(p + 16, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let uncompressedSize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let diskStart = dv.getUint16(p + 34, true);
    let localHeaderOffset = dv.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdSize) throw new WeightFileError(file, `zip central directory entry ${i} runs past the directory end`);
    const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information: only the fields saturated in the fixed header are present, in this order.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = dv.getUint16(x, true);
      const size = dv.getUint16(x + 2, true);
      if (x + 4 + size > xEnd) throw new WeightFileError(file, `zip entry '${name}': extra field runs past its end`);
      if (id === 0x0001) {
        let q = x + 4;
        const qEnd = q + size;
        const need = (what: string, n: number): void => {
          if (q + n > qEnd) throw new WeightFileError(file, `zip entry '${name}': zip64 extra field lacks the ${what}`);
        };
        if (uncompressedSize === 0xffffffff) { need('uncompressed size', 8); uncompressedSize = u64(dv, q, file, 'size'); q += 8; }
        if (compressedSize === 0xffffffff) { need('compressed size', 8); compressedSize = u64(dv, q, file, 'size'); q += 8; }
        if (localHeaderOffset === 0xffffffff) { need('local header offset', 8); localHeaderOffset = u64(dv, q, file, 'offset'); q += 8; }
        if (diskStart === 0xffff) { need('disk number', 4); diskStart = dv.getUint32(q, true); q += 4; }
      }
      x += 4 + size;
    }
    if (flags & 0x1) throw new WeightFileError(file, `zip entry '${name}' is encrypted`);
    if (diskStart !== 0) throw new WeightFileError(file, 'multi-disk (split) zip archives are not supported');
    if (localHeaderOffset + 30 + compressedSize > fileSize) {
      throw new WeightFileError(file, `zip entry '${name}' (${compressedSize} bytes at ${localHeaderOffset}) lies beyond the end of the ${fileSize}-byte file (truncated?)`);
    }
    const entry: ZipEntry = { name, method, flags, crc32, compressedSize, uncompressedSize, localHeaderOffset };
    if (byName.has(name)) throw new WeightFileError(file, `zip entry '${name}' appears twice`);
    entries.push(entry);
    byName.set(name, entry);
    p = end;
  }
  return { entries, byName, zip64 };
}

/**
 * Absolute file offset of the data of `entry` (reads its local header, whose name and extra-field
 * lengths may differ from the central directory's: torch pads the local extra field for alignment).
 */
export async function entryDataOffset(src: ByteSource, entry: ZipEntry): Promise<number> {
  const [file, fileSize] = [src.name, src.size];
  const h = await readExactly(src, entry.localHeaderOffset, 30, `zip local header of '${entry.name}'`);
  const dv = new DataView(h.buffer, h.byteOffset, 30);
  if (dv.getUint32(0, true) !== LOCAL_SIG) {
    throw new WeightFileError(file, `zip entry '${entry.name}': no local file header at offset ${entry.localHeaderOffset}`);
  }
  const nameLen = dv.getUint16(26, true);
  const extraLen = dv.getUint16(28, true);
  const nameBytes = await readExactly(src, entry.localHeaderOffset + 30, nameLen, `zip local header of '${entry.name}'`);
  const localName = new TextDecoder('utf-8').decode(nameBytes);
  if (localName !== entry.name) {
    throw new WeightFileError(file, `zip entry '${entry.name}': local header names '${localName}' (corrupt archive)`);
  }
  const start = entry.localHeaderOffset + 30 + nameLen + extraLen;
  if (start + entry.compressedSize > fileSize) {
    throw new WeightFileError(file, `zip entry '${entry.name}': its ${entry.compressedSize} bytes at ${start} run past the end of the ${fileSize}-byte file (truncated?)`);
  }
  return start;
}

let CRC_TABLE: Uint32Array | undefined;

/**
 * CRC-32 (zip polynomial), continuing from `crc` (0 to start). A table loop: it only checks the small
 * entries read here (data.pkl, byteorder); torch-writer.ts uses zlib's native one for storages.
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  const t = CRC_TABLE;
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
