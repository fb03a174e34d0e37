/**
 * Sequential byte sources the pipeline pulls from: a plain file, or a gzip stream (payloads made with
 * the reference encoder's --compress). Both fill the caller's buffer, so the hot path owns all memory.
 */
import type { FileHandle } from 'node:fs/promises';
import { constants as zlibConstants, createGunzip, gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { asReadError, InputError, MetharmeXorError } from '../errors.js';
import { openInput, readInput } from '../input-files.js';

export interface ByteSource {
  readonly path: string;
  /** Fills buf[0, want) as far as the data goes; fewer than `want` bytes means the data has ended. */
  read(buf: Buffer, want: number): Promise<number>;
  close(): Promise<void>;
}

/** Bytes held in memory as a source (a small file already read whole, a rebuilt side file). */
export class MemorySource implements ByteSource {
  private at: number;
  constructor(
    readonly path: string,
    private readonly data: Buffer,
    start = 0,
  ) {
    this.at = Math.min(start, data.length);
  }
  async read(buf: Buffer, want: number): Promise<number> {
    const n = this.data.copy(buf, 0, this.at, Math.min(this.data.length, this.at + want));
    this.at += n;
    return n;
  }
  async close(): Promise<void> {}
}

export class FileSource implements ByteSource {
  private position = 0;
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    /** Never read past this: the size the file had when it was opened (or planned). */
    private readonly limit: number,
  ) {}

  /** `limit`: bytes to read at most; default the size the opened file has now. `start`: the first byte to read. */
  static async open(path: string, options: { limit?: number | undefined; start?: number } = {}): Promise<FileSource> {
    const { handle, size } = await openInput(path);
    const source = new FileSource(path, handle, options.limit ?? size);
    source.position = options.start ?? 0;
    return source;
  }

  async read(buf: Buffer, want: number): Promise<number> {
    let filled = 0;
    const allowed = Math.min(want, this.limit - this.position);
    try {
      while (filled < allowed) {
        const { bytesRead } = await this.handle.read(buf, filled, allowed - filled, this.position);
        if (bytesRead === 0) break;
        filled += bytesRead;
        this.position += bytesRead;
      }
    } catch (err) {
      throw asReadError(err, this.path);
    }
    return filled;
  }

  /** The file's size now, to tell whether it changed while it was read. */
  async sizeNow(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

export class GzipSource implements ByteSource {
  private readonly chunks: AsyncIterator<Buffer>;
  private readonly stream: ReturnType<typeof createGunzip>;
  private pending: Buffer | undefined;
  private ended = false;

  private constructor(
    readonly path: string,
    compressed: Readable,
    private readonly release: () => Promise<void>,
    /** The source of the compressed bytes, when it is not a local file (a Hub file checks its own digest). */
    readonly inner?: ByteSource,
  ) {
    const gunzip = createGunzip();
    compressed.on('error', (err) => gunzip.destroy(err));
    // The inflater runs ahead of the reads: it can fail before the first read has set up the
    // iterator's listeners, and an 'error' nobody listens to ends the process. The iterator still
    // throws the stored error on the next read.
    gunzip.on('error', () => undefined);
    this.stream = compressed.pipe(gunzip);
    this.chunks = this.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  static async open(path: string): Promise<GzipSource> {
    const { handle, size } = await openInput(path);
    // Bounded by the size at opening: a file that grows meanwhile is not followed.
    const file = handle.createReadStream({ highWaterMark: 1 << 20, start: 0, end: Math.max(0, size - 1), autoClose: false });
    return new GzipSource(path, file, () => handle.close().catch(() => undefined));
  }

  /** Inflates the bytes of any source (a file on the Hub), pulled 1 MiB at a time. */
  static over(inner: ByteSource): GzipSource {
    const piece = 1 << 20;
    async function* pieces() {
      for (;;) {
        const buf = Buffer.allocUnsafe(piece);
        const n = await inner.read(buf, piece);
        if (n > 0) yield buf.subarray(0, n);
        if (n < piece) return;
      }
    }
    return new GzipSource(inner.path, Readable.from(pieces(), { objectMode: false }), () => inner.close(), inner);
  }

  async read(buf: Buffer, want: number): Promise<number> {
    let filled = 0;
    while (filled < want && !this.ended) {
      if (!this.pending || this.pending.length === 0) {
        let next: IteratorResult<Buffer>;
        try {
          next = await this.chunks.next();
        } catch (err) {
          // The inner source's own errors (an interruption, the Hub's answers) are already what the user needs.
          if (err instanceof MetharmeXorError) throw err;
          const code = (err as NodeJS.ErrnoException).code;
          if (code && code.startsWith('Z_')) {
            throw new InputError(`gzip payload is corrupt (${code})`, {
              file: this.path,
              hint: 'download the XOR file again',
              cause: err,
            });
          }
          throw asReadError(err, this.path);
        }
        if (next.done) {
          this.ended = true;
          break;
        }
        this.pending = next.value;
      }
      const take = Math.min(this.pending.length, want - filled);
      this.pending.copy(buf, filled, 0, take);
      this.pending = this.pending.subarray(take);
      filled += take;
    }
    return filled;
  }

  async close(): Promise<void> {
    this.stream.destroy();
    await this.release();
  }
}


/** Reads the first bytes of a file (fewer if it is shorter). */
export async function readHead(path: string, length: number): Promise<Buffer> {
  return (await readInput(path, length)).bytes;
}

/**
 * Whether a payload that starts like gzip really is one: its first bytes must inflate. A raw payload
 * can start with the four gzip bytes by chance (XORed weights are arbitrary); it will not inflate.
 */
export function inflatesAsGzip(head: Buffer): boolean {
  if (!isGzip(head)) return false;
  try {
    gunzipSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 256 << 20 });
    return true;
  } catch {
    return false;
  }
}

/**
 * A gzip member starts 1f 8b, then method 08 (deflate) and a flag byte whose top three bits are zero.
 * Checking all four makes a raw payload that happens to start with 1f 8b (XORed weights are
 * arbitrary bytes) ~4,000x less likely to be mistaken for gzip than the magic alone.
 */
export function isGzip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08 && (head[3]! & 0xe0) === 0;
}
