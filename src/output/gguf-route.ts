/**
 * One tensor of a shard streaming into the GGUF (gguf-assembly.ts): its storage's bytes, in order,
 * gathered a block of rows at a time (one attention head of q/k rows), reordered and converted
 * (gguf-tensors.ts, on the conversion workers: convert-pool.ts) and handed on to be written at its
 * place, then its alignment padding. Buffers come from a pool of a few slab sizes of shared memory
 * (which the workers read and write in place), reused once their writes are done.
 */
import { elementCount, type TensorLayout } from '../release/state-dict.js';
import { padTo, type GgmlType } from './gguf-format.js';
import { convertRowsAsync } from './convert-pool.js';
import { sourceBytes } from './ggml-blocks.js';
import { blockRows, keepsBits, rowBytes, rowsOf, unpermuteHead } from './gguf-tensors.js';

/** The smallest slab the pool hands out. */
const MIN_SLAB = 64 << 10;

/**
 * Buffers for a GGUF's conversions, handed back once their writes are done: slabs of a few sizes
 * (powers of two), so that the same few are reused rather than a stream of odd sizes allocated and
 * freed. Every slab is kept: the pool holds what was in flight at once, which the sinks bound. A
 * slab let go is not memory given back: the conversion workers hold it too until their own garbage
 * collection, which their little allocation rarely runs (a pool that dropped slabs above 8 MiB grew
 * a Q8_0 decode to over 1 GB).
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();

  take(size: number): Buffer {
    const slab = Math.max(MIN_SLAB, 2 ** Math.ceil(Math.log2(Math.max(1, size))));
    const buf = this.free.get(slab)?.pop() ?? Buffer.from(new SharedArrayBuffer(slab));
    return buf.subarray(0, size);
  }

  /** A buffer `take` gave (or a part of it). */
  give(part: Buffer): void {
    const slab = Buffer.from(part.buffer, 0, part.buffer.byteLength);
    const list = this.free.get(slab.length) ?? [];
    list.push(slab);
    this.free.set(slab.length, list);
  }
}

/** A block of rows made into GGUF bytes (convertBlock). */
export interface ConvertedBlock {
  /** The bytes, or their conversion under way on the workers. */
  data: Buffer | Promise<Buffer>;
  bytes: number;
  /** The pool's buffers to give back once `data` is written. */
  recycle: Buffer[];
  /** The rows were copied in their new order: their buffer may be refilled or given back at once. */
  rowsFree: boolean;
}

/**
 * Whole rows of a tensor (`rows`, source bytes in a buffer of `pool`) as the GGUF holds them: q/k rows
 * reverse-permuted a head at a time, then kept as they are or converted on the conversion workers.
 * Both the decode's routes and the gguf command's tensor writer gather their blocks through this.
 */
export function convertBlock(rows: Buffer, t: { dtype: string; permuteHead: number | undefined }, type: GgmlType, cols: number, pool: BufferPool): ConvertedBlock {
  const srcRow = cols * sourceBytes(t.dtype)!;
  const reordered = t.permuteHead ? unpermuteHead(rows, t.permuteHead, srcRow, pool.take(rows.length)) : undefined;
  const ordered = reordered ?? rows;
  if (keepsBits(t.dtype, type)) return { data: ordered, bytes: ordered.length, recycle: [ordered], rowsFree: reordered !== undefined };
  const target = pool.take(rowBytes(type, cols) * (rows.length / srcRow));
  // The rows are read on a worker while this thread goes on: their buffer is not refilled before then.
  return { data: convertRowsAsync(ordered, t.dtype, type, cols, target), bytes: target.length, recycle: [target, ordered], rowsFree: reordered !== undefined };
}

/**
 * Where a route's bytes go, in the order they are put (a conversion's bytes once it is done):
 * `recycle` goes back to the pool once the bytes are written; without it the bytes are the caller's
 * (the decoded stream's), copied or written before the caller's `write` returns.
 */
export type Put = (data: Buffer | Promise<Buffer>, position: number, recycle?: Buffer[]) => void;

/** One tensor's storage bytes, in order, converted a block of rows at a time and written at its place. */
export class TensorRoute {
  private readonly srcRow: number;
  private readonly blockBytes: number;
  /** Only while the tensor's bytes arrive: one tensor's block is held at a time. */
  private block: Buffer | undefined;
  private filled = 0;
  private out: number;
  private readonly start: number;
  private padded = false;
  private received = 0;
  private readonly total: number;
  private readonly cols: number;
  /** Neither reordered nor converted: no block is gathered. */
  private readonly passThrough: boolean;

  constructor(
    private readonly t: TensorLayout,
    private readonly type: GgmlType,
    private readonly permuteHead: number | undefined,
    at: number,
    private readonly pool: BufferPool,
  ) {
    const { cols } = rowsOf(t.shape);
    this.cols = cols;
    this.srcRow = cols * sourceBytes(t.dtype)!;
    this.blockBytes = Math.min(blockRows({ permuteHead }, this.srcRow), rowsOf(t.shape).rows) * this.srcRow;
    this.total = elementCount(t.shape) * t.elementBytes;
    this.passThrough = !permuteHead && keepsBits(t.dtype, type);
    this.out = at;
    this.start = at;
  }

  get complete(): boolean {
    return this.received === this.total;
  }

  get name(): string {
    return this.t.name;
  }

  /** Storage bytes from `offset`; what is ready to write goes to `put`. */
  push(offset: number, bytes: Buffer, put: Put): void {
    const from = this.t.offset * this.t.elementBytes;
    let i = Math.max(0, from - offset);
    if (this.passThrough && i < bytes.length && this.received < this.total) {
      // Bytes kept as they are, in their order: written from the decoded stream's own buffer.
      const n = Math.min(bytes.length - i, this.total - this.received);
      put(bytes.subarray(i, i + n), this.out);
      this.out += n;
      this.received += n;
      i += n;
    }
    while (i < bytes.length && this.received < this.total) {
      this.block ??= this.pool.take(this.blockBytes);
      const n = Math.min(bytes.length - i, this.block.length - this.filled, this.total - this.received);
      bytes.copy(this.block, this.filled, i, i + n);
      this.filled += n;
      this.received += n;
      i += n;
      if (this.filled === this.block.length || this.received === this.total) this.flush(put);
    }
    if (this.received !== this.total || this.padded) return;
    if (this.block) this.pool.give(this.block);
    this.block = undefined;
    // The alignment padding follows the tensor's last byte, so that the region is written front to back.
    this.padded = true;
    const pad = padTo(this.out - this.start);
    if (pad > 0) put(Buffer.alloc(pad), this.out, []);
  }

  private flush(put: Put): void {
    const converted = convertBlock(this.block!.subarray(0, this.filled), { dtype: this.t.dtype, permuteHead: this.permuteHead }, this.type, this.cols, this.pool);
    put(converted.data, this.out, converted.recycle);
    this.out += converted.bytes;
    if (!converted.rowsFree) this.block = undefined;
    this.filled = 0;
  }
}
