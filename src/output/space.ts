/** Disk space preflight: refuse a decode that cannot fit before writing a byte of it. */
import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { WriteError } from '../errors.js';
import { formatBytes } from '../format.js';

export async function freeBytes(path: string): Promise<number | undefined> {
  return (await spaceOf(path))?.free;
}

/** Free and total bytes of the file system `path` is on (or would be created on). */
async function spaceOf(path: string): Promise<{ free: number; total: number } | undefined> {
  let dir = resolve(path);
  for (;;) {
    try {
      const s = await statfs(dir);
      return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
      const parent = dirname(dir);
      if (parent === dir) return undefined;
      dir = parent;
    }
  }
}

export async function requireFreeSpace(outputDir: string, needed: number): Promise<void> {
  const space = await spaceOf(outputDir);
  // procfs, sysfs and the like hold no files: "0 B free" would send the user to free space.
  if (space?.total === 0 && needed > 0) {
    throw new WriteError('is on a file system that stores no files (such as /proc or /sys)', { file: outputDir, hint: 'choose an output folder on a disk' });
  }
  const free = space?.free;
  if (free === undefined || needed <= free) return;
  throw new WriteError(`not enough free space: ${formatBytes(needed)} still to write, ${formatBytes(free)} free (${needed} > ${free} bytes)`, {
    file: outputDir,
    hint: 'free some space or choose another output folder (--no-space-check skips this check)',
  });
}
