/**
 * Atomic outputs. Every file is written under a temporary name in a hidden folder of the output
 * folder (same file system, so the final rename is atomic) and renamed only once it is complete,
 * flushed and verified. A file under its final name is therefore always whole and correct.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { DIRECT_ALIGN, O_DIRECT } from '../codec/direct-io.js';
import { asWriteError, InputError } from '../errors.js';
import type { OutputSink } from '../codec/stream-job.js';

export const STATE_DIR_NAME = '.metharme-xor';

/** A temporary output file: written by the pipeline, then committed or discarded. */
export class TempFile implements OutputSink {
  /** Set for page-cache writes, so the pipeline starts writeback as it goes. */
  readonly flush: (() => Promise<void>) | undefined;

  constructor(
    /** Buffered handle: unaligned tails, the final flush, and everything when `direct` is absent. */
    readonly handle: FileHandle,
    /** O_DIRECT handle to the same file, for whole aligned blocks. */
    readonly direct: FileHandle | undefined,
    readonly tempPath: string,
    /** The final name (error messages name the file the user asked for). */
    readonly path: string,
  ) {
    this.flush = direct ? undefined : () => handle.datasync();
  }

  async write(data: Buffer, length: number, position: number): Promise<void> {
    let done = 0;
    if (this.direct && position % DIRECT_ALIGN === 0) {
      const aligned = length - (length % DIRECT_ALIGN);
      // A short direct write leaves an unaligned remainder: the buffered handle takes it from there.
      while (done < aligned && done % DIRECT_ALIGN === 0) {
        const { bytesWritten } = await this.direct.write(data, done, aligned - done, position + done);
        if (bytesWritten === 0) break;
        done += bytesWritten;
      }
    }
    while (done < length) {
      const { bytesWritten } = await this.handle.write(data, done, length - done, position + done);
      done += bytesWritten;
    }
  }

  /** Writes through the page cache only: for bytes from memory that is not aligned for direct writes. */
  async writeBuffered(data: Buffer, length: number, position: number): Promise<void> {
    for (let done = 0; done < length; ) done += (await this.handle.write(data, done, length - done, position + done)).bytesWritten;
  }

  async close(): Promise<void> {
    await this.direct?.close().catch(() => undefined);
    await this.handle.close().catch(() => undefined);
  }
}

export function stateDir(outputDir: string): string {
  return join(outputDir, STATE_DIR_NAME);
}

/**
 * Temporary outputs live in their own folder under their final names: a payload name (never a path)
 * cannot reach the lock, the state or each other, and is no longer than the final name.
 */
export function partialDir(outputDir: string): string {
  return join(stateDir(outputDir), 'partial');
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir reports ENOENT where the real cause is a
 * read-only file system or a permission, and users need the real cause.
 */
async function makeDirs(path: string): Promise<void> {
  const missing: string[] = [];
  let dir = resolve(path);
  while (!(await lstatOrUndefined(dir))) {
    missing.unshift(dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  for (const d of missing) {
    await mkdir(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

/** Our own folders must be real folders inside the output folder, never links to elsewhere. */
async function requireRealDir(path: string): Promise<void> {
  const info = await lstat(path);
  if (!info.isDirectory()) {
    throw new InputError('is not a folder (a symlink or a file)', {
      file: path,
      hint: 'remove it; metharme-xor keeps its temporary files and state there',
    });
  }
}

export async function prepareOutputDir(outputDir: string): Promise<void> {
  // Each level is checked before anything is created inside it: never a folder made through a link.
  for (const dir of [stateDir(outputDir), partialDir(outputDir)]) {
    try {
      await makeDirs(dir);
    } catch (err) {
      throw asWriteError(err, outputDir, 'creating the output folder');
    }
    await requireRealDir(dir);
  }
}

/**
 * Deletes what an interrupted run left: temporary outputs, and the temporary names of the state and
 * the lock. Only called while holding the lock, so nothing deleted here is in use.
 */
export async function removeStaleFiles(outputDir: string, keep: ReadonlySet<string> = new Set()): Promise<void> {
  const remove = async (dir: string, keep: (name: string) => boolean) => {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (keep(name)) continue;
      const info = await lstat(join(dir, name)).catch(() => undefined);
      if (info && !info.isDirectory()) await unlink(join(dir, name)).catch(() => undefined);
    }
  };
  await remove(partialDir(outputDir), (name) => keep.has(name));
  // Version 1 kept temporary outputs beside the state as <name>.partial.
  await remove(stateDir(outputDir), (name) => name === 'lock' || name === 'state.json' || name === 'partial');
}

/** `name`: the output's final name in `outputDir`. */
export async function createTemp(outputDir: string, name: string, options: { direct?: boolean } = {}): Promise<TempFile> {
  const tempPath = join(partialDir(outputDir), name);
  const finalPath = join(outputDir, name);
  let handle: FileHandle;
  try {
    await unlink(tempPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    // "wx" (O_CREAT | O_EXCL) never opens through anything already there, a planted symlink included.
    handle = await open(tempPath, 'wx', 0o644);
  } catch (err) {
    throw asWriteError(err, tempPath, 'creating a temporary file');
  }
  let direct: FileHandle | undefined;
  if (options.direct && O_DIRECT !== undefined) {
    direct = await open(tempPath, constants.O_WRONLY | constants.O_NOFOLLOW | O_DIRECT).catch(() => undefined);
  }
  return new TempFile(handle, direct, tempPath, finalPath);
}

/**
 * The temporary output an interrupted run kept, opened to be written on from `bytes`: only if it is
 * still the regular file of inode `ino` with at least `bytes` bytes (else undefined, and the caller
 * starts afresh). What lies past `bytes` was written out of order or not flushed: it is cut off.
 */
export async function reopenTemp(outputDir: string, name: string, kept: { ino: string; bytes?: number }, options: { direct?: boolean } = {}): Promise<TempFile | undefined> {
  const tempPath = join(partialDir(outputDir), name);
  let handle: FileHandle;
  try {
    handle = await open(tempPath, constants.O_RDWR | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  const info = await handle.stat({ bigint: true }).catch(() => undefined);
  if (!info?.isFile() || info.ino.toString() !== kept.ino || info.size < BigInt(kept.bytes ?? 0)) {
    await handle.close();
    return undefined;
  }
  try {
    // Without `bytes` (a GGUF, whose kept parts are not a prefix) nothing is cut.
    if (kept.bytes !== undefined) await handle.truncate(kept.bytes);
  } catch (err) {
    await handle.close();
    throw asWriteError(err, tempPath, 'resuming a temporary file');
  }
  let direct: FileHandle | undefined;
  if (options.direct && O_DIRECT !== undefined) {
    direct = await open(tempPath, constants.O_WRONLY | constants.O_NOFOLLOW | O_DIRECT).catch(() => undefined);
  }
  return new TempFile(handle, direct, tempPath, join(outputDir, name));
}

/** Keeps an interrupted temporary output on disk for the next run: flushed, then closed. */
export async function keepTemp(temp: TempFile): Promise<void> {
  await temp.handle.datasync().catch(() => undefined);
  await temp.close();
}

/** Windows: an indexer or antivirus holding the target open makes rename fail for a moment. */
const BUSY_RENAME = new Set(['EPERM', 'EACCES', 'EBUSY']);

export async function renameWithRetry(
  from: string,
  to: string,
  options: { platform?: NodeJS.Platform; rename?: (a: string, b: string) => Promise<void>; delaysMs?: readonly number[] } = {},
): Promise<void> {
  const doRename = options.rename ?? rename;
  const delays = (options.platform ?? process.platform) === 'win32' ? (options.delaysMs ?? [50, 100, 250, 500, 1000, 2000]) : [];
  for (let attempt = 0; ; attempt++) {
    try {
      await doRename(from, to);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      const delay = delays[attempt];
      if (delay === undefined || !BUSY_RENAME.has(code)) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Flushes and closes the temporary file, runs `beforeRename` (the resume state records the file
 * under the identity it keeps through the rename, so a kill between the two leaves a file the next
 * run recognises), then moves it to its final name (replacing a file or symlink there).
 */
export async function commitTemp(temp: TempFile, beforeRename?: () => Promise<void>): Promise<void> {
  try {
    // Also flushes the disk's write cache for what the direct handle wrote.
    await temp.handle.datasync();
    await temp.close();
    await beforeRename?.();
    await renameWithRetry(temp.tempPath, temp.path);
  } catch (err) {
    await discardTemp(temp);
    throw asWriteError(err, temp.path, 'finishing the file');
  }
}

export async function discardTemp(temp: TempFile): Promise<void> {
  await temp.close();
  await unlink(temp.tempPath).catch(() => undefined);
}

/** Removes our hidden folders when nothing is left in them. */
export async function tidyOutputDir(outputDir: string): Promise<void> {
  await rmdir(partialDir(outputDir)).catch(() => undefined);
  await rmdir(stateDir(outputDir)).catch(() => undefined);
}

export async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
