import { describe, expect, it } from 'vitest';
import { ByteRing } from '../../src/hub/byte-ring.js';
import { seededBytes } from '../support/helpers.js';

/** Takes everything the ring holds. */
function drain(ring: ByteRing): Buffer {
  const out = Buffer.alloc(ring.length);
  ring.take(out.length, out);
  return out;
}

describe('ByteRing', () => {
  it('keeps bytes in order across the wrap, whether read into its free space or put', () => {
    const ring = new ByteRing(100);
    const data = seededBytes(1000, 3);
    const taken: Buffer[] = [];
    let at = 0;
    for (let step = 0; at < data.length; step++) {
      if (step % 2 === 0) {
        // A socket read into the free space: at most up to the end of the memory.
        const free = ring.freeSpace();
        const n = Math.min(free.length, 37, data.length - at);
        data.copy(free, 0, at, at + n);
        ring.added(n);
        at += n;
      } else {
        const n = Math.min(23, data.length - at);
        ring.put(data.subarray(at, at + n));
        at += n;
      }
      expect(ring.length + ring.room).toBe(100);
      const out = Buffer.alloc(Math.min(ring.length, 41));
      ring.take(out.length, out);
      taken.push(out);
    }
    taken.push(drain(ring));
    expect(Buffer.concat(taken).equals(data)).toBe(true);
  });

  it('bytes put with no room wait after the others, and move in as room is made; no free space meanwhile', () => {
    const ring = new ByteRing(10);
    ring.put(Buffer.from('0123456789'));
    expect(ring.room).toBe(0);
    expect(ring.freeSpace().length).toBe(0);
    ring.put(Buffer.from('abcdefghijklmnopqrstuvwxyz'));
    expect(ring.length).toBe(36);
    expect(ring.room).toBe(-26);
    expect(ring.freeSpace().length).toBe(0);
    expect(ring.peek(4).toString()).toBe('0123');
    const first = Buffer.alloc(15);
    ring.take(15, first);
    expect(first.toString()).toBe('0123456789abcde');
    expect(ring.peek(100).toString()).toBe('fghijklmno');
    expect(drain(ring).toString()).toBe('fghijklmnopqrstuvwxyz');
    expect(ring.length).toBe(0);
    expect(ring.freeSpace().length).toBeGreaterThan(0);
  });

  it('peek copies across the wrap and takes nothing; take without a target drops bytes', () => {
    const ring = new ByteRing(8);
    ring.put(Buffer.from('abcdef'));
    ring.take(5);
    ring.put(Buffer.from('ghijk'));
    expect(ring.peek(6).toString()).toBe('fghijk');
    expect(ring.peek(3).toString()).toBe('fgh');
    expect(ring.length).toBe(6);
    expect(drain(ring).toString()).toBe('fghijk');
  });
});
