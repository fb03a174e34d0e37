import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { acquireLock } from '../../src/output/lock.js';
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

  it('release() leaves a lock that another process holds', async () => {
    const lock = await acquireLock(dir);
    const other = { pid: 1, host: hostname(), started: 'x' };
    await writeFile(lock.path, JSON.stringify(other));
    await lock.release();
    expect(JSON.parse(await readFile(lock.path, 'utf8')).pid).toBe(1);
  });
});
