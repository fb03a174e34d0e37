/**
 * O_DIRECT output. Writing decoded shards through the page cache makes the kernel allocate and
 * later flush a fresh page for every 4 KiB, which on VMs that hand memory back to their host costs
 * 1-4x the hashing time, and varies run to run. Direct writes go from our buffers to the disk:
 * measured here 0.45 s/GiB with 0.14 s of CPU, against 0.5-2.7 s buffered with fdatasync.
 *
 * Direct I/O needs buffers, lengths and file offsets aligned to the device's block size. V8 does not
 * expose buffer addresses, so the aligned start inside a buffer is found by trying direct writes
 * to a scratch file at 16-byte steps (allocations are 16-byte aligned).
 */
import { closeSync, constants, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Offsets, lengths and positions of direct writes are multiples of this (covers 512 and 4096). */
export const DIRECT_ALIGN = 4096;

export const O_DIRECT: number | undefined = (constants as Record<string, number>).O_DIRECT;

/**
 * Memory for direct writes that starts on a page. The kernel takes direct writes from any address on
 * a device block (512 bytes), but from one that is not also on a page it wrote fresh file blocks
 * 10-25x slower on the project's VM (4-16 s/GiB against 0.3-0.6 s from a page, 8 MiB writes), and a
 * Buffer's own allocation starts only on 16 bytes. V8 gives no addresses, but a WebAssembly memory
 * is mapped whole, so it starts on a page.
 */
export function pageAlignedBuffer(bytes: number): Buffer {
  const pages = Math.ceil(bytes / 65536);
  return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, bytes);
}

/**
 * Returns the offset into `buffer` at which direct writes to files in `dir` work, or undefined when
 * the platform or file system does not support them (tmpfs, macOS, Windows).
 */
export function findDirectOffset(buffer: Uint8Array, dir: string): number | undefined {
  if (O_DIRECT === undefined || process.env.METHARME_XOR_NO_DIRECT_IO) return undefined;
  const probe = join(dir, `.direct-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
  let fd: number;
  try {
    fd = openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_DIRECT, 0o600);
  } catch {
    return undefined;
  }
  try {
    for (let offset = 0; offset + DIRECT_ALIGN <= buffer.length && offset < DIRECT_ALIGN; offset += 16) {
      try {
        writeSync(fd, buffer, offset, DIRECT_ALIGN, 0);
        return offset;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') return undefined;
      }
    }
    return undefined;
  } finally {
    closeSync(fd);
    try {
      unlinkSync(probe);
    } catch {
      // Best effort: the probe lives in our hidden folder, which is tidied at the end.
    }
  }
}
