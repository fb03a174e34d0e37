/**
 * Sequential byte sources the pipeline pulls from: a plain file, or a gzip stream (payloads made with
 * the reference encoder's --compress). Both fill the caller's buffer, so the hot path owns all memory.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { asReadError, InputError } from '../errors.js';

export interface ByteSource {
  readonly path: string;
  /** Fills buf[0, want) as far as the data goes; fewer than `want` bytes means the data has ended. */
  read(buf: Buffer, want: number): Promise<number>;
  close(): Promise<void>;
}

export class FileSource implements ByteSource {
  private position = 0;
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<FileSource> {
    try {
      return new FileSource(path, await open(path, 'r'));
    } catch (err) {
      throw asReadError(err, path);
    }
  }

  async read(buf: Buffer, want: number): Promise<number> {
    let filled = 0;
    try {
      while (filled < want) {
        const { bytesRead } = await this.handle.read(buf, filled, want - filled, this.position);
        if (bytesRead === 0) break;
        filled += bytesRead;
        this.position += bytesRead;
      }
    } catch (err) {
      throw asReadError(err, this.path);
    }
    return filled;
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

  constructor(readonly path: string) {
    const gunzip = createGunzip();
    const file = createReadStream(path, { highWaterMark: 1 << 20 });
    file.on('error', (err) => gunzip.destroy(err));
    this.stream = file.pipe(gunzip);
    this.chunks = this.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async read(buf: Buffer, want: number): Promise<number> {
    let filled = 0;
    while (filled < want && !this.ended) {
      if (!this.pending || this.pending.length === 0) {
        let next: IteratorResult<Buffer>;
        try {
          next = await this.chunks.next();
        } catch (err) {
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
  }
}


/** Reads the first bytes of a file (fewer if it is shorter). */
export async function readHead(path: string, length: number): Promise<Buffer> {
  const source = await FileSource.open(path);
  try {
    const buf = Buffer.alloc(length);
    const n = await source.read(buf, length);
    return buf.subarray(0, n);
  } finally {
    await source.close();
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
