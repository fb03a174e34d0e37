import { describe, expect, it } from 'vitest';
import { renameWithRetry } from '../../src/output/temp-file.js';

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
