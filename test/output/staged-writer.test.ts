/**
 * The staged direct writer (output/staged-writer.ts), with its two stages and with the four a
 * lossless GGUF uses: appends of every size, stage boundaries crossed mid-append, many writes in
 * flight at once, an unaligned tail, and a start inside the file leave exactly the bytes appended.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findDirectOffset } from '../../src/codec/direct-io.js';
import { StagedWriter } from '../../src/output/staged-writer.js';
import { createTemp, partialDir } from '../../src/output/temp-file.js';
import { removeDir } from '../support/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'mxor-staged-'));
mkdirSync(partialDir(dir), { recursive: true });
afterAll(async () => {
  await removeDir(dir);
});

/** Whether this file system takes direct writes at all (tmpfs does not: then no writer is made). */
const DIRECT = findDirectOffset(Buffer.alloc(16384), dir) !== undefined;

describe('staged direct writes', () => {
  for (const stages of [2, 4]) {
    it.skipIf(!DIRECT)(`${stages} stages: the file holds exactly what was appended, from where it started`, async () => {
      const start = 8192;
      const temp = await createTemp(dir, `out-${stages}`, { direct: true });
      const writer = StagedWriter.create(temp, dir, start, stages)!;
      expect(writer).toBeDefined();
      const data = randomBytes((19 << 20) + 1234);
      const appends: Promise<void>[] = [];
      // Sizes from one byte to more than a stage, so that appends straddle stages.
      for (let at = 0, k = 0; at < data.length; k++) {
        const n = Math.min(data.length - at, [1, 4095, 65536, 3 << 20, 5 << 20, 777][k % 6]!);
        appends.push(writer.append(data.subarray(at, at + n)));
        at += n;
      }
      await Promise.all(appends);
      await writer.finish();
      await temp.close();
      const file = await readFile(temp.tempPath);
      expect(file.length).toBe(start + data.length);
      expect(file.subarray(start).equals(data)).toBe(true);
    });
  }
});
