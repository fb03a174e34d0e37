import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32Concat } from '../../src/output/crc32-concat.js';

describe('crc32Concat', () => {
  it('gives zlib\'s CRC-32 of the two joined, for lengths from 0 to past a block, and through chains of blocks', () => {
    for (const [la, lb] of [[0, 0], [0, 5], [5, 0], [1, 1], [3, 4096], [4096, 3], [100_000, 278_528], [7, 1 << 20]]) {
      const a = randomBytes(la!);
      const b = randomBytes(lb!);
      expect(crc32Concat(crc32(a), crc32(b), b.length)).toBe(crc32(Buffer.concat([a, b])));
    }
    const blocks = Array.from({ length: 9 }, (_, i) => randomBytes(i === 8 ? 1234 : 65_536));
    const joined = blocks.reduce((crc, b) => crc32Concat(crc, crc32(b), b.length), 0);
    expect(joined).toBe(crc32(Buffer.concat(blocks)));
    // A changed byte anywhere changes the result.
    blocks[3]![100]! ^= 1;
    expect(blocks.reduce((crc, b) => crc32Concat(crc, crc32(b), b.length), 0)).not.toBe(joined);
  });
});
