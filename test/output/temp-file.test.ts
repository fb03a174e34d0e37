import { readdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTemp, keepTemp, partialDir, prepareOutputDir, removeStaleFiles, renameWithRetry, reopenTemp } from '../../src/output/temp-file.js';
import { removeDir, seededBytes, tempDir } from '../support/helpers.js';

function flaky(failures: number, code: string) {
  let calls = 0;
  return {
    calls: () => calls,
    rename: async () => {
      calls++;
      if (calls <= failures) throw Object.assign(new Error(code), { code });
    },
  };
}

describe('renameWithRetry', () => {
  it('on Windows, retries a rename an indexer or antivirus holds up (EPERM, EBUSY) with backoff', async () => {
    const f = flaky(2, 'EPERM');
    await renameWithRetry('a', 'b', { platform: 'win32', rename: f.rename, delaysMs: [1, 1, 1] });
    expect(f.calls()).toBe(3);
  });

  it('gives up after its delays run out, with the last error', async () => {
    const f = flaky(10, 'EBUSY');
    await expect(renameWithRetry('a', 'b', { platform: 'win32', rename: f.rename, delaysMs: [1, 1] })).rejects.toThrow('EBUSY');
    expect(f.calls()).toBe(3);
  });

  it('elsewhere, and for other errors, fails at once', async () => {
    const linux = flaky(1, 'EPERM');
    await expect(renameWithRetry('a', 'b', { platform: 'linux', rename: linux.rename })).rejects.toThrow('EPERM');
    expect(linux.calls()).toBe(1);
    const other = flaky(1, 'ENOSPC');
    await expect(renameWithRetry('a', 'b', { platform: 'win32', rename: other.rename, delaysMs: [1] })).rejects.toThrow('ENOSPC');
    expect(other.calls()).toBe(1);
  });
});

describe('temporary outputs kept to resume', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
    await prepareOutputDir(dir);
  });
  afterEach(() => removeDir(dir));

  async function keptFile(bytes: Buffer) {
    const temp = await createTemp(dir, 'shard.bin');
    await temp.write(bytes, bytes.length, 0);
    const { ino } = await temp.handle.stat({ bigint: true });
    await keepTemp(temp);
    return ino.toString();
  }

  it('reopens the same file, cut to the kept length; refuses another inode or a shorter file', async () => {
    const ino = await keptFile(seededBytes(10_000, 1));
    expect(await reopenTemp(dir, 'shard.bin', { ino: '1', bytes: 4096 })).toBeUndefined();
    expect(await reopenTemp(dir, 'shard.bin', { ino, bytes: 20_000 })).toBeUndefined();
    expect(await reopenTemp(dir, 'other.bin', { ino, bytes: 4096 })).toBeUndefined();
    const temp = await reopenTemp(dir, 'shard.bin', { ino, bytes: 8192 });
    expect(temp).toBeDefined();
    await temp!.close();
    expect((await readFile(join(partialDir(dir), 'shard.bin'))).equals(seededBytes(10_000, 1).subarray(0, 8192))).toBe(true);
  });

  it('never reopens through a symlink planted under the kept name', async () => {
    const ino = await keptFile(seededBytes(8192, 2));
    await rename(join(partialDir(dir), 'shard.bin'), join(dir, 'elsewhere.bin'));
    await symlink(join(dir, 'elsewhere.bin'), join(partialDir(dir), 'shard.bin'));
    expect(await reopenTemp(dir, 'shard.bin', { ino, bytes: 4096 })).toBeUndefined();
    expect((await readFile(join(dir, 'elsewhere.bin'))).length).toBe(8192);
  });

  it('removeStaleFiles keeps the kept names and deletes the rest', async () => {
    await keptFile(seededBytes(100, 3));
    await writeFile(join(partialDir(dir), 'leftover.bin'), 'x');
    await removeStaleFiles(dir, new Set(['shard.bin']));
    expect((await readdir(partialDir(dir))).sort()).toEqual(['shard.bin']);
    await removeStaleFiles(dir);
    expect(await readdir(partialDir(dir))).toEqual([]);
  });
});
