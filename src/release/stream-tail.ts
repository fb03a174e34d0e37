/**
 * The last bytes of a stream, kept as it goes by: a zip's central directory and end records are at
 * the end, and they decide what torch reads. With the stream's size known, only the bytes that fall
 * in the window are copied; without it (a gzip payload), the window rolls.
 */

/** Enough for the directory of an archive of some 30,000 records; torch shards hold a few hundred. */
export const TAIL_BYTES = 4 << 20;

export class StreamTail {
  private buf: Buffer | undefined;
  private filled = 0;
  /** Absolute offset of buf[0] (sized mode). */
  private start = 0;
  private seen = 0;

  constructor(
    /** The stream's total size, when known. */
    private readonly size?: number,
    private readonly keep = TAIL_BYTES,
  ) {}

  /** Takes the stream's next bytes (which must follow the previous ones). */
  push(chunk: Uint8Array): void {
    const at = this.seen;
    this.seen += chunk.length;
    if (this.size !== undefined) {
      const from = Math.max(0, this.size - this.keep);
      if (this.seen <= from) return;
      if (!this.buf) {
        this.buf = Buffer.alloc(Math.min(this.size, this.keep));
        this.start = from;
      }
      const skip = Math.max(0, from - at);
      const room = this.buf.length - (at + skip - this.start);
      const n = Math.min(chunk.length - skip, Math.max(0, room));
      if (n > 0) this.buf.set(chunk.subarray(skip, skip + n), at + skip - this.start);
      this.filled = Math.max(this.filled, at + skip + n - this.start);
      return;
    }
    this.buf ??= Buffer.alloc(this.keep * 2);
    if (chunk.length >= this.keep) {
      this.buf.set(chunk.subarray(chunk.length - this.keep), 0);
      this.filled = this.keep;
      return;
    }
    if (this.filled + chunk.length > this.buf.length) {
      // Keep the newest `keep - chunk.length` bytes at the front, then append.
      const keepOld = this.keep - chunk.length;
      this.buf.copy(this.buf, 0, this.filled - keepOld, this.filled);
      this.filled = keepOld;
    }
    this.buf.set(chunk, this.filled);
    this.filled += chunk.length;
  }

  /** The kept bytes and their absolute offset; undefined when the stream did not end at its size. */
  bytes(): { data: Buffer; start: number } | undefined {
    if (this.size !== undefined && this.seen !== this.size) return undefined;
    const n = Math.min(this.filled, this.keep);
    const data = (this.buf ?? Buffer.alloc(0)).subarray(this.filled - n, this.filled);
    return { data, start: this.seen - n };
  }
}
