/**
 * Atomic outputs. Every file is written under a temporary name in a hidden folder of the output
 * folder (same file system, so the final rename is atomic) and renamed only once it is complete,
 * flushed and verified. A file under its final name is therefore always whole and correct.
 */
import { lstat, mkdir, open, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { asWriteError } from './errors.js';

export const STATE_DIR_NAME = '.metharme-xor';

export interface TempFile {
  handle: FileHandle;
  path: string;
  finalPath: string;
}

export function stateDir(outputDir: string): string {
  return join(outputDir, STATE_DIR_NAME);
}

export async function prepareOutputDir(outputDir: string): Promise<void> {
  try {
    await mkdir(stateDir(outputDir), { recursive: true });
  } catch (err) {
    throw asWriteError(err, outputDir, 'creating the output folder');
  }
}

export async function createTemp(outputDir: string, name: string): Promise<TempFile> {
  const path = join(stateDir(outputDir), `${name}.partial`);
  try {
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    // "wx" refuses to open through anything already there, including a symlink planted meanwhile.
    return { handle: await open(path, 'wx', 0o644), path, finalPath: join(outputDir, name) };
  } catch (err) {
    throw asWriteError(err, path, 'creating a temporary file');
  }
}

/** Flushes, closes and moves the temporary file to its final name (replacing a file or symlink there). */
export async function commitTemp(temp: TempFile): Promise<void> {
  try {
    await temp.handle.datasync();
    await temp.handle.close();
    await rename(temp.path, temp.finalPath);
  } catch (err) {
    await discardTemp(temp);
    throw asWriteError(err, temp.finalPath, 'finishing the file');
  }
}

export async function closeTemp(temp: TempFile): Promise<void> {
  await temp.handle.close().catch(() => undefined);
}

export async function discardTemp(temp: TempFile): Promise<void> {
  await closeTemp(temp);
  await unlink(temp.path).catch(() => undefined);
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
