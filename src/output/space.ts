/** Disk space preflight: refuse a decode that cannot fit before writing a byte of it. */
import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { WriteError } from '../errors.js';
import { formatBytes } from '../format.js';

export async function freeBytes(path: string): Promise<number | undefined> {
  let dir = resolve(path);
  for (;;) {
    try {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
      const parent = dirname(dir);
      if (parent === dir) return undefined;
      dir = parent;
    }
  }
}

export async function requireFreeSpace(outputDir: string, needed: number): Promise<void> {
  const free = await freeBytes(outputDir);
  if (free === undefined || needed <= free) return;
  throw new WriteError(`not enough free space: ${formatBytes(needed)} still to write, ${formatBytes(free)} free (${needed} > ${free} bytes)`, {
    file: outputDir,
    hint: 'free some space or choose another output folder (--no-space-check skips this check)',
  });
}
