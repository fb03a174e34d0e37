/**
 * One writer per output folder. A second run on the same folder would race the first one's
 * temporary files and renames, so it is refused; a lock left by a process that no longer exists
 * (kill -9, power loss) is taken over.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { asWriteError, InputError } from '../errors.js';
import { stateDir } from './temp-file.js';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

export interface Lock {
  path: string;
  /** Set when a stale lock was taken over: who held it. */
  tookOverFrom: LockInfo | undefined;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
    return typeof info.pid === 'number' ? info : undefined;
  } catch {
    return undefined;
  }
}

export async function acquireLock(outputDir: string): Promise<Lock> {
  const path = join(stateDir(outputDir), 'lock');
  const mine: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const candidate = `${path}.${process.pid}`;
  try {
    await writeFile(candidate, `${JSON.stringify(mine)}\n`, { flag: 'w' });
  } catch (err) {
    throw asWriteError(err, candidate, 'creating the lock');
  }
  let tookOverFrom: LockInfo | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        // link() fails if the lock exists: an atomic "create if absent" with the content already in place.
        await link(candidate, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw asWriteError(err, path, 'creating the lock');
      }
      const holder = await readLock(path);
      const stale = holder !== undefined && holder.host === mine.host && !alive(holder.pid);
      if (!stale || attempt > 2) {
        const who = holder ? `process ${holder.pid} on ${holder.host}, since ${holder.started}` : 'another process';
        throw new InputError(`another metharme-xor run is writing to this folder (${who})`, {
          file: path,
          hint: 'wait for it to finish or stop it; if no such run exists, delete the lock file',
        });
      }
      tookOverFrom = holder;
      await unlink(path).catch(() => undefined);
    }
  } finally {
    await unlink(candidate).catch(() => undefined);
  }
  return {
    path,
    tookOverFrom,
    release: async () => {
      const holder = await readLock(path);
      if (holder?.pid === process.pid) await unlink(path).catch(() => undefined);
    },
  };
}
