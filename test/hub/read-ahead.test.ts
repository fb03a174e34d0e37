import { describe, expect, it } from 'vitest';
import { ReadAhead } from '../../src/hub/read-ahead.js';

/** A body of `pieces` chunks of `size` bytes (chunk i filled with i), counting how many were pulled. */
function body(pieces: number, size: number, options: { failAt?: number } = {}) {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (options.failAt === pulled) return controller.error(new Error('reset'));
      if (pulled === pieces) return controller.close();
      controller.enqueue(new Uint8Array(size).fill(pulled++));
    },
  }, { highWaterMark: 0 });
  return { reader: stream.getReader(), pulled: () => pulled };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('ReadAhead', () => {
  it('reads ahead while nobody asks, but never more than its limit past what was taken', async () => {
    const b = body(100, 1000);
    const ahead = new ReadAhead(b.reader, 5000);
    await settle();
    expect(b.pulled()).toBe(5);
    expect((await ahead.next())![0]).toBe(0);
    await settle();
    expect(b.pulled()).toBe(6);
    await ahead.cancel();
  });

  it('gives every piece once, in order, then ends', async () => {
    const b = body(10, 7);
    const ahead = new ReadAhead(b.reader, 20);
    const seen: number[] = [];
    for (let piece = await ahead.next(); piece; piece = await ahead.next()) seen.push(piece[0]!);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await ahead.next()).toBeUndefined();
  });

  it('a body that fails ends after what arrived before, like a dropped connection', async () => {
    const ahead = new ReadAhead(body(10, 7, { failAt: 3 }).reader, 1000);
    const seen: number[] = [];
    for (let piece = await ahead.next(); piece; piece = await ahead.next()) seen.push(piece[0]!);
    expect(seen).toEqual([0, 1, 2]);
  });

  it('cancel ends a waiting next at once and drops what was queued', async () => {
    const stalled = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => undefined) });
    const ahead = new ReadAhead(stalled.getReader(), 1000);
    const waiting = ahead.next();
    setTimeout(() => void ahead.cancel(), 20);
    expect(await waiting).toBeUndefined();
    expect(ahead.readingSince).toBeUndefined();
  });

  it('tells how long the network has been silent, and not while it waits for room', async () => {
    const b = body(100, 1000);
    const ahead = new ReadAhead(b.reader, 2000);
    await settle();
    // Full: waiting for the consumer, not for the network.
    expect(ahead.readingSince).toBeUndefined();
    const stalled = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => undefined) });
    const silent = new ReadAhead(stalled.getReader(), 1000);
    await settle();
    expect(silent.readingSince).toBeLessThanOrEqual(Date.now() - 10);
    await ahead.cancel();
    await silent.cancel();
  });
});
