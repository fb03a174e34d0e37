import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { acquireLock, bootId, holderAlive, processStartTicks } from '../../src/output/lock.js';
import { stateDir } from '../../src/output/temp-file.js';
import { removeDir, tempDir } from '../support/helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
  await mkdir(stateDir(dir));
});
afterEach(() => removeDir(dir));

describe('acquireLock', () => {
  it('holds the folder: a second acquisition is refused (exit 2) until release', async () => {
    const lock = await acquireLock(dir);
    const refused = await acquireLock(dir).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InputError);
    expect((refused as InputError).message).toMatch(new RegExp(`process ${process.pid}`));
    await lock.release();
    const again = await acquireLock(dir);
    await again.release();
  });

  it('takes over a lock whose process no longer exists, and says whose it was', async () => {
    const dead = { pid: 2 ** 22 + 17, host: hostname(), started: '2026-01-01T00:00:00Z' };
    await writeFile(join(stateDir(dir), 'lock'), JSON.stringify(dead));
    const lock = await acquireLock(dir);
    expect(lock.tookOverFrom).toMatchObject({ pid: dead.pid });
    expect(JSON.parse(await readFile(lock.path, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('takes over a lock whose PID now belongs to an unrelated live process (the start time differs)', async () => {
    const reused = { pid: process.ppid, host: hostname(), started: '2026-01-01T00:00:00Z', bootId: bootId(), startTicks: '1' };
    await writeFile(join(stateDir(dir), 'lock'), JSON.stringify(reused));
    expect(holderAlive(reused)).toBe(false);
    const lock = await acquireLock(dir);
    expect(lock.tookOverFrom).toMatchObject({ pid: process.ppid });
    await lock.release();
  });

  it('refuses while the recorded process is really alive (same start time)', async () => {
    const live = { pid: process.ppid, host: hostname(), started: 'x', bootId: bootId(), startTicks: processStartTicks(process.ppid) };
    expect(holderAlive(live)).toBe(true);
    await writeFile(join(stateDir(dir), 'lock'), JSON.stringify(live));
    await expect(acquireLock(dir)).rejects.toThrow(/another metharme-xor run is writing to this folder/);
  });

  it('a lock from before a reboot is stale whatever its PID', () => {
    expect(holderAlive({ pid: process.pid, host: hostname(), started: 'x', bootId: 'another-boot' })).toBe(false);
  });

  it('takes over an empty lock file (power loss while it was written) once it is older than the grace period', async () => {
    const path = join(stateDir(dir), 'lock');
    await writeFile(path, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(path, old, old);
    const lock = await acquireLock(dir);
    expect(lock.tookOverFrom).toMatchObject({ pid: 0 });
    await lock.release();
  });

  it('waits out a fresh empty lock file: it may be one being written right now', async () => {
    await writeFile(join(stateDir(dir), 'lock'), '');
    const t0 = Date.now();
    const lock = await acquireLock(dir, { graceMs: 400 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    await lock.release();
  });

  it('works where hard links fail (exFAT/FAT: EPERM), still one holder at a time', async () => {
    const noLinks = async () => {
      throw Object.assign(new Error('EPERM'), { code: 'EPERM' });
    };
    const lock = await acquireLock(dir, { link: noLinks });
    expect(JSON.parse(await readFile(lock.path, 'utf8')).pid).toBe(process.pid);
    await expect(acquireLock(dir, { link: noLinks })).rejects.toThrow(/another metharme-xor run/);
    await lock.release();
  });

  it('release() leaves a lock that another process holds', async () => {
    const lock = await acquireLock(dir);
    const other = { pid: 1, host: hostname(), started: 'x' };
    await writeFile(lock.path, JSON.stringify(other));
    await lock.release();
    expect(JSON.parse(await readFile(lock.path, 'utf8')).pid).toBe(1);
  });
});
