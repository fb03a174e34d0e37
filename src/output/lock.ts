/**
 * One writer per output folder. A second run on the same folder would race the first one's
 * temporary files and renames, so it is refused; a lock left by a process that no longer exists
 * (kill -9, power loss, a reboot) is taken over. "No longer exists" is decided by the PID and the
 * process's start time and boot id (Linux), so a PID reused by an unrelated process does not keep
 * the folder locked forever; a lock file that cannot be read (power loss while it was written) is
 * stale once it is a few seconds old.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, open, stat, unlink } from 'node:fs/promises';
import { readInput } from '../input-files.js';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { asWriteError, InputError } from '../errors.js';
import { stateDir } from './temp-file.js';

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  /** Linux: the boot the process ran in, and its start time in clock ticks since that boot. */
  bootId?: string | undefined;
  startTicks?: string | undefined;
}

export interface Lock {
  path: string;
  /** Set when a stale lock was taken over: who held it. */
  tookOverFrom: LockInfo | undefined;
  release(): Promise<void>;
}

/** An unreadable lock younger than this may be one being written right now. */
const UNREADABLE_GRACE_MS = 3000;

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function bootId(): string | undefined {
  return readProc('/proc/sys/kernel/random/boot_id')?.trim();
}

/** Field 22 of /proc/<pid>/stat, counted after the command name (which may contain spaces). */
export function processStartTicks(pid: number): string | undefined {
  const text = readProc(`/proc/${pid}/stat`);
  if (!text) return undefined;
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

export function describeSelf(): LockInfo {
  return { pid: process.pid, host: hostname(), started: new Date().toISOString(), bootId: bootId(), startTicks: processStartTicks(process.pid) };
}

/** Whether the process that wrote `holder` still runs. Locks from another host are assumed alive. */
export function holderAlive(holder: LockInfo): boolean {
  if (holder.host !== hostname()) return true;
  const boot = bootId();
  if (holder.bootId && boot && holder.bootId !== boot) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.startTicks) {
    const now = processStartTicks(holder.pid);
    if (now !== undefined && now !== holder.startTicks) return false;
  }
  return true;
}

async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse((await readInput(path, 64 << 10)).bytes.toString('utf8')) as LockInfo;
    return typeof info.pid === 'number' && typeof info.host === 'string' ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Creates `path` holding `text` only if nothing is there: a hard link where the file system has them, else O_EXCL. */
async function writeNew(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx', 0o644);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

type Link = (existing: string, created: string) => Promise<void>;

async function createExclusive(path: string, text: string, link: Link): Promise<boolean> {
  const candidate = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await writeNew(candidate, text);
  } catch (err) {
    throw asWriteError(err, candidate, 'creating the lock');
  }
  try {
    // link() fails if the lock exists: an atomic "create if absent" with the content already in place.
    await link(candidate, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // exFAT/FAT and some network file systems have no hard links: fall back to O_EXCL creation.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw asWriteError(err, path, 'creating the lock');
    try {
      await writeNew(path, text);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw asWriteError(e, path, 'creating the lock');
    }
  } finally {
    await unlink(candidate).catch(() => undefined);
  }
}

/** `link`: replaceable in tests, to play a file system without hard links. */
export async function acquireLock(outputDir: string, options: { graceMs?: number; link?: Link } = {}): Promise<Lock> {
  const path = join(stateDir(outputDir), 'lock');
  const mine = describeSelf();
  const text = `${JSON.stringify(mine)}\n`;
  const grace = options.graceMs ?? UNREADABLE_GRACE_MS;
  let tookOverFrom: LockInfo | undefined;
  const deadline = Date.now() + grace + 1000;
  for (let attempt = 0; ; attempt++) {
    if (await createExclusive(path, text, options.link ?? link)) break;
    const holder = await readLock(path);
    if (!holder) {
      const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0);
      if (age < grace && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
    } else if (holderAlive(holder) || attempt > 3) {
      throw new InputError(`another metharme-xor run is writing to this folder (process ${holder.pid} on ${holder.host}, since ${holder.started})`, {
        file: path,
        hint: 'wait for it to finish or stop it; if no such run exists, delete the lock file',
      });
    }
    if (attempt > 50) throw new InputError('cannot take the lock', { file: path, hint: 'delete the lock file if no run is using this folder' });
    tookOverFrom = holder ?? { pid: 0, host: 'unknown', started: 'unknown (the lock file was empty or damaged)' };
    await unlink(path).catch(() => undefined);
  }
  return {
    path,
    tookOverFrom,
    release: async () => {
      const holder = await readLock(path);
      if (holder?.pid === process.pid && holder.startTicks === mine.startTicks) await unlink(path).catch(() => undefined);
    },
  };
}
