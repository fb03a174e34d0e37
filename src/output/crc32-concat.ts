/**
 * The CRC-32 of two byte strings one after the other, from their CRC-32s and the second one's
 * length: a conversion worker checksums the block it made, and the blocks of a tensor are joined in
 * order without their bytes passing through this thread again.
 *
 * zlib's crc32(b, s) is affine in the state s over GF(2): crc32(b, s) = T(s) ^ crc32(b, 0), where T,
 * linear, depends only on b's length. So crc32(a + b) = crc32(b, crc32(a)) = T(crc32(a)) ^ crc32(b).
 * T is the same for every b of a length; its 32 columns are the CRCs of that many zeros from each
 * single-bit state (with the zero state's taken out), made once for each length seen.
 */
import { crc32 } from 'node:zlib';

const shifts = new Map<number, Uint32Array>();

function shiftFor(length: number): Uint32Array {
  let columns = shifts.get(length);
  if (!columns) {
    const zeros = Buffer.alloc(length);
    const base = crc32(zeros, 0);
    columns = new Uint32Array(32);
    for (let bit = 0; bit < 32; bit++) columns[bit] = (crc32(zeros, 2 ** bit) ^ base) >>> 0;
    // Blocks come in a few lengths (a tensor's blocks, its last one): the cache stays small.
    if (shifts.size > 256) shifts.clear();
    shifts.set(length, columns);
  }
  return columns;
}

/** The CRC-32 of a + b, given crc32(a), crc32(b) and b's length. */
export function crc32Concat(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB === 0) return crcA;
  const columns = shiftFor(lengthB);
  let shifted = 0;
  for (let bit = 0, s = crcA >>> 0; s !== 0; bit++, s >>>= 1) if (s & 1) shifted ^= columns[bit]!;
  return (shifted ^ crcB) >>> 0;
}
