/**
 * One base shard of the 2023 layout as a byte source: the exact bytes torch 1.13.1's `torch.save`
 * wrote, produced in order from the tensors' values (a TensorReader) and never stored. The zip
 * framing and data.pkl depend only on names, dtypes and shapes; each record's CRC-32 is taken as
 * its bytes go by, for its data descriptor and the central directory at the end.
 */
import { crc32 } from 'node:zlib';
import type { ByteSource } from '../codec/sources.js';
import { byteSize, type TensorShape } from './llama-shapes.js';
import { contiguousStride, statePickle } from './torch-pickle.js';
import { dataDescriptor, directory, layTorchZip, localHeader, shardRecords, type ZipLayout } from './torch-zip.js';

/** Where a rebuilt base takes each tensor's values from, in the 2023 layout's byte order. */
export interface TensorReader {
  /** Fills buf[0, length) with bytes [offset, offset + length) of tensor `name`. */
  read(name: string, offset: number, buf: Buffer, length: number): Promise<void>;
  close(): Promise<void>;
}

type Piece = { kind: 'bytes'; data: Buffer; record?: number } | { kind: 'tensor'; name: string; size: number; record: number } | { kind: 'descriptor'; record: number } | { kind: 'directory' };

export class RebuiltShard implements ByteSource {
  private readonly layout: ZipLayout;
  private readonly pieces: Piece[] = [];
  private readonly crcs: number[];
  private piece = 0;
  /** Bytes of the current piece already given. */
  private within = 0;
  private current: Buffer | undefined;

  /** `tensors`: the shard's tensors in state-dict order; `archive`: the file name without `.bin`. */
  constructor(
    readonly path: string,
    archive: string,
    tensors: readonly TensorShape[],
    private readonly reader: TensorReader,
  ) {
    const pickled = tensors.map((t, i) => ({
      name: t.name,
      storageClass: t.dtype === 'F16' ? ('HalfStorage' as const) : ('FloatStorage' as const),
      storageKey: String(i),
      storageNumel: t.shape.reduce((n, d) => n * d, 1),
      offset: 0,
      shape: t.shape,
      stride: contiguousStride(t.shape),
    }));
    const pkl = statePickle(pickled);
    this.layout = layTorchZip(shardRecords(archive, pkl.length, tensors.map((t, i) => ({ key: String(i), bytes: byteSize(t) }))));
    this.crcs = this.layout.records.map(() => 0);
    const byKey = new Map(tensors.map((t, i) => [String(i), t]));
    this.layout.records.forEach((r, i) => {
      this.pieces.push({ kind: 'bytes', data: localHeader(r) });
      const key = /\/data\/(\d+)$/.exec(r.name)?.[1];
      if (key !== undefined) this.pieces.push({ kind: 'tensor', name: byKey.get(key)!.name, size: r.size, record: i });
      else this.pieces.push({ kind: 'bytes', data: r.name.endsWith('/data.pkl') ? pkl : Buffer.from('3\n'), record: i });
      this.pieces.push({ kind: 'descriptor', record: i });
    });
    this.pieces.push({ kind: 'directory' });
  }

  /** The size of the shard of `tensors` under `archive`, without opening anything. */
  static sizeOf(archive: string, tensors: readonly TensorShape[]): number {
    return new RebuiltShard('', archive, tensors, { read: async () => undefined, close: async () => undefined }).size;
  }

  /** The shard's size in bytes. */
  get size(): number {
    return this.layout.total;
  }

  async read(buf: Buffer, want: number): Promise<number> {
    let filled = 0;
    while (filled < want && this.piece < this.pieces.length) {
      const p = this.pieces[this.piece]!;
      if (p.kind === 'tensor') {
        const n = Math.min(want - filled, p.size - this.within);
        const into = buf.subarray(filled, filled + n);
        await this.reader.read(p.name, this.within, into, n);
        this.crcs[p.record] = crc32(into, this.crcs[p.record]);
        this.advance(n, p.size);
        filled += n;
        continue;
      }
      const data = (this.current ??= this.bytesOf(p));
      const n = Math.min(want - filled, data.length - this.within);
      data.copy(buf, filled, this.within, this.within + n);
      if (p.kind === 'bytes' && p.record !== undefined && this.within === 0) this.crcs[p.record] = crc32(data);
      this.advance(n, data.length);
      filled += n;
    }
    return filled;
  }

  private bytesOf(p: Piece): Buffer {
    if (p.kind === 'bytes') return p.data;
    if (p.kind === 'descriptor') return dataDescriptor(this.layout.records[p.record]!, this.crcs[p.record]!);
    return directory(this.layout, this.crcs);
  }

  private advance(n: number, size: number): void {
    this.within += n;
    if (this.within === size) {
      this.piece++;
      this.within = 0;
      this.current = undefined;
    }
  }

  async close(): Promise<void> {
    await this.reader.close();
  }
}
