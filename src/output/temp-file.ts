/**
 * Atomic outputs. Every file is written under a temporary name in a hidden folder of the output
 * folder (same file system, so the final rename is atomic) and renamed only once it is complete,
 * flushed and verified. A file under its final name is therefore always whole and correct.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { DIRECT_ALIGN, O_DIRECT } from '../codec/direct-io.js';
import { asWriteError, InputError } from '../errors.js';
import type { OutputSink } from '../codec/pipeline.js';

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

  async close(): Promise<void> {
    await this.direct?.close().catch(() => undefined);
    await this.handle.close().catch(() => undefined);
  }
}

export function stateDir(outputDir: string): string {
  return join(outputDir, STATE_DIR_NAME);
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

export async function prepareOutputDir(outputDir: string): Promise<void> {
  try {
    await makeDirs(stateDir(outputDir));
  } catch (err) {
    throw asWriteError(err, outputDir, 'creating the output folder');
  }
  // Temporary files must be written inside the output folder itself, never through a link elsewhere.
  const info = await lstat(stateDir(outputDir));
  if (!info.isDirectory()) {
    throw new InputError('is not a folder (a symlink or a file)', {
      file: stateDir(outputDir),
      hint: 'remove it; metharme-xor keeps its temporary files and state there',
    });
  }
}

export async function createTemp(outputDir: string, name: string, options: { direct?: boolean } = {}): Promise<TempFile> {
  const tempPath = join(stateDir(outputDir), `${name}.partial`);
  const finalPath = join(outputDir, name);
  let handle: FileHandle;
  try {
    await unlink(tempPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    // "wx" refuses to open through anything already there, including a symlink planted meanwhile.
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

/** Flushes, closes and moves the temporary file to its final name (replacing a file or symlink there). */
export async function commitTemp(temp: TempFile): Promise<void> {
  try {
    // Also flushes the disk's write cache for what the direct handle wrote.
    await temp.handle.datasync();
    await temp.close();
    await rename(temp.tempPath, temp.path);
  } catch (err) {
    await discardTemp(temp);
    throw asWriteError(err, temp.path, 'finishing the file');
  }
}

export async function discardTemp(temp: TempFile): Promise<void> {
  await temp.close();
  await unlink(temp.tempPath).catch(() => undefined);
}

/** Removes the hidden folder when nothing is left in it. */
export async function tidyOutputDir(outputDir: string): Promise<void> {
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
