/**
 * The GGUF conversions' buffer pool: every slab handed back is handed out again, however many were
 * in flight, because a slab let go is not memory given back (the conversion workers hold shared
 * memory until their own garbage collection, which they rarely run: a pool that dropped slabs above
 * 8 MiB grew a Q8_0 decode past 1 GB).
 */
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/output/gguf-route.js';

describe('BufferPool', () => {
  it('hands out the same slabs again after 48 MiB were in flight at once (none let go)', () => {
    const pool = new BufferPool();
    const first = Array.from({ length: 48 }, () => pool.take(1 << 20));
    const slabs = new Set(first.map((b) => b.buffer));
    expect(slabs.size).toBe(48);
    first.forEach((b) => pool.give(b));
    const again = Array.from({ length: 48 }, () => pool.take(1 << 20));
    expect(again.every((b) => slabs.has(b.buffer))).toBe(true);
  });

  it('rounds sizes to a few slab sizes of shared memory, and a part given back returns the whole slab', () => {
    const pool = new BufferPool();
    const a = pool.take(300_000);
    expect(a.length).toBe(300_000);
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(a.buffer.byteLength).toBe(512 << 10);
    pool.give(a.subarray(0, 10));
    const b = pool.take(400_000);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(400_000);
    // Another size class does not take it.
    expect(pool.take(100).buffer).not.toBe(a.buffer);
  });
});
