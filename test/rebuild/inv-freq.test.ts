import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { invFreqBytes, roundToHalf } from '../../src/rebuild/inv-freq.js';

describe('inv_freq of the 2023 conversion', () => {
  it('head_dim 128 gives the 256 bytes the reference computed with torch 1.13.1 (fp32 of fp16-rounded values)', () => {
    const bytes = invFreqBytes(128);
    expect(bytes.length).toBe(256);
    expect(bytes.subarray(0, 16).toString('hex')).toBe('0000803f00a05d3f0000403f0040263f');
    expect(createHash('sha256').update(bytes).digest('hex')).toBe('3dc784354261d03ced422cdc48b22b64b0426ce1a4dc971ec487fdd3b45f5456');
  });

  it('rounds to the nearest fp16, ties to even, subnormals included', () => {
    expect(roundToHalf(1 + 2 ** -11)).toBe(1); // halfway between 1 and 1 + 2^-10: to even (1)
    expect(roundToHalf(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9); // halfway, odd below: up
    expect(roundToHalf(65520)).toBe(Infinity);
    expect(roundToHalf(2 ** -25)).toBe(0); // halfway to the smallest subnormal: to even (0)
    expect(roundToHalf(3 * 2 ** -26)).toBe(2 ** -24);
    expect(roundToHalf(-0.333251953125)).toBe(-0.333251953125);
  });
});
