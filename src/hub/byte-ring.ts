/**
 * The bytes a connection received that its reader has not taken yet, in a fixed circular buffer. A
 * socket can read straight into its free space; bytes that arrive with no room left (a read already
 * under way when the socket paused) wait in a list after it and move in as room is made.
 */
export class ByteRing {
  private readonly memory: Buffer;
  /** Absolute counts of bytes taken out of, and put into, the memory. */
  private head = 0;
  private tail = 0;
  private readonly overflow: Buffer[] = [];
  private overflowBytes = 0;

  constructor(size: number) {
    this.memory = Buffer.allocUnsafe(size);
  }

  /** Bytes held, in order. */
  get length(): number {
    return this.tail - this.head + this.overflowBytes;
  }

  /** Bytes that can still come in before the ring is full (negative while some wait in the list). */
  get room(): number {
    return this.memory.length - this.length;
  }

  /** The free space right after the last byte, up to the end of the memory; empty when there is none. */
  freeSpace(): Buffer {
    if (this.overflowBytes > 0) return this.memory.subarray(0, 0);
    const at = this.tail % this.memory.length;
    return this.memory.subarray(at, at + Math.min(this.room, this.memory.length - at));
  }

  /** Counts `n` bytes that were read into `freeSpace()`. */
  added(n: number): void {
    this.tail += n;
  }

  /** Copies `data` in after the last byte (into the list while there is no room for it). */
  put(data: Uint8Array): void {
    this.overflow.push(Buffer.from(data));
    this.overflowBytes += data.length;
    this.refill();
  }

  /** Takes out the first `n` bytes (n <= length), copied into `into` when given. */
  take(n: number, into?: Uint8Array): void {
    for (let at = 0; at < n; this.refill()) {
      const start = this.head % this.memory.length;
      const piece = Math.min(n - at, this.tail - this.head, this.memory.length - start);
      into?.set(this.memory.subarray(start, start + piece), at);
      this.head += piece;
      at += piece;
    }
  }

  /** Moves what waits in the list into the memory, as far as it has room. */
  private refill(): void {
    while (this.overflow.length > 0) {
      const free = this.memory.length - (this.tail - this.head);
      if (free === 0) return;
      const data = this.overflow[0]!;
      const part = data.subarray(0, free);
      const at = this.tail % this.memory.length;
      const first = Math.min(part.length, this.memory.length - at);
      part.copy(this.memory, at, 0, first);
      if (first < part.length) part.copy(this.memory, 0, first);
      this.tail += part.length;
      this.overflowBytes -= part.length;
      if (part.length === data.length) this.overflow.shift();
      else this.overflow[0] = data.subarray(part.length);
    }
  }

  /** A copy of the first bytes held, up to `max`. */
  peek(max: number): Buffer {
    const n = Math.min(max, this.tail - this.head);
    const out = Buffer.allocUnsafe(n);
    const at = this.head % this.memory.length;
    const first = Math.min(n, this.memory.length - at);
    this.memory.copy(out, 0, at, at + first);
    if (first < n) this.memory.copy(out, first, 0, n - first);
    return out;
  }
}
