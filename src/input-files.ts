/**
 * Opening inputs safely. Only regular files are inputs, checked on the opened descriptor (what is
 * read), not on the path; every read is bounded, so a file that grows, a FIFO or /dev/zero can
 * neither hang a run nor fill the disk or the memory.
 */
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { asReadError, InputError } from './errors.js';

function kindOf(info: Stats): string {
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  if (info.isSocket()) return 'a socket';
  if (info.isDirectory()) return 'a folder';
  return 'not a regular file';
}

/**
 * Opens an input for reading. Only regular files are inputs, and that is checked on the opened
 * descriptor (what is read), not on the path: a FIFO, a device such as /dev/zero or a socket is
 * refused (exit 2). O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer.
 */
export async function openInput(path: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw asReadError(err, path);
  }
  const info = await handle.stat().catch(async (err: unknown) => {
    await handle.close();
    throw asReadError(err, path);
  });
  if (!info.isFile()) {
    await handle.close().catch(() => undefined);
    throw new InputError(`is ${kindOf(info)}, not a regular file`, { file: path, hint: 'only regular files are read; put the file itself there' });
  }
  return { handle, size: info.size };
}

/** Reads a whole small input, at most `maxBytes` of it (the rest, if any, is not read). */
export async function readInput(path: string, maxBytes: number): Promise<{ bytes: Buffer; size: number }> {
  const { handle, size } = await openInput(path);
  try {
    const buf = Buffer.alloc(Math.min(size, maxBytes));
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return { bytes: buf.subarray(0, filled), size };
  } catch (err) {
    throw asReadError(err, path);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Standard input, read whole, at most `maxBytes` (a larger one is refused by the caller from `size`). */
export async function readStdin(maxBytes: number): Promise<{ bytes: Buffer; size: number }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) break;
    chunks.push(chunk);
  }
  return { bytes: Buffer.concat(chunks), size };
}
