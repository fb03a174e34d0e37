/**
 * Memory for direct writes starts on a page: from a buffer that the kernel accepts (on a device
 * block) but that is not on a page, fresh file blocks were written 10-25x slower on the project's VM,
 * which made --safetensors and --gguf 3-4x a plain decode.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findDirectOffset, pageAlignedBuffer } from '../../src/codec/direct-io.js';
import { removeDir } from '../support/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'mxor-direct-'));
afterAll(async () => {
  await removeDir(dir);
});

/** Whether this file system takes direct writes at all (tmpfs does not: then there is nothing to align). */
const DIRECT = findDirectOffset(Buffer.alloc(16384), dir) !== undefined;

describe('page-aligned memory for direct writes', () => {
  it('is the size asked, zeroed, and writable', () => {
    const b = pageAlignedBuffer(100_000);
    expect(b.length).toBe(100_000);
    expect(b.every((x) => x === 0)).toBe(true);
    b.fill(7);
    expect(b[99_999]).toBe(7);
  });

  it.skipIf(!DIRECT)('direct writes start at its first byte, allocation after allocation', () => {
    for (const size of [8192, 1 << 20, (16 << 20) + 4096]) {
      for (let i = 0; i < 4; i++) expect(findDirectOffset(pageAlignedBuffer(size), dir)).toBe(0);
    }
  });
});
