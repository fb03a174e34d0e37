/**
 * Writes a torch zip checkpoint as safetensors while its bytes stream by (decode --safetensors). The
 * decoded .bin is never stored: the torch zip reader (torch-zip-stream.ts) gives data.pkl's tensors,
 * the header is written first, and each storage's bytes are copied to the places of the tensors that
 * use them as they arrive.
 *
 * safetensors: 8-byte little-endian header length, JSON header padded with spaces to a multiple of
 * 8 with `__metadata__: {"format": "pt"}`, then the tensors, contiguous and without holes (here in
 * the order their storages arrive).
 */
import type { OutputSink } from '../codec/stream-job.js';
import { InputError } from '../errors.js';
import { elementCount, isContiguous, type TensorLayout } from '../release/state-dict.js';
import { buildHeader, checkHeader, HeaderProblem } from './safetensors-header.js';
import { StagedWriter } from './staged-writer.js';
import { StreamRefusal } from './stream-refusal.js';
import type { TempFile } from './temp-file.js';
import { TorchZipStream } from './torch-zip-stream.js';

interface Placed extends TensorLayout {
  /** Byte range in the storage. */
  from: number;
  to: number;
  /** Where its bytes go in the safetensors file. */
  at: number;
  written: number;
}

export class SafetensorsSink implements OutputSink {
  readonly path: string;
  /** Page-cache writes are written back as the pipeline goes, as for a .bin output. */
  readonly flush: (() => Promise<void>) | undefined;
  private readonly stream: TorchZipStream;
  private tensors: Placed[] | undefined;
  private byStorage = new Map<string, Placed[]>();
  private header: Buffer | undefined;
  private dataBytes = 0;
  private writes: Promise<unknown>[] = [];
  private readonly refused = new StreamRefusal();

  /** Set once the layout is known to be written front to back (no storage shared by two tensors). */
  private staged: StagedWriter | undefined;
  /** Where the next in-order byte goes (staged mode). */
  private cursor = 0;

  constructor(
    private readonly temp: TempFile,
    /** The .bin's name, for messages. */
    private readonly source: string,
    /** Where direct writes may be probed (the output file system); absent: page cache only. */
    private readonly directDir?: string,
    /** The .bin's size, when known: only its last bytes (the zip's directory) are kept. */
    size?: number,
  ) {
    this.path = temp.path;
    this.flush = temp.flush;
    this.stream = new TorchZipStream({ onTensors: (t) => this.place(t), onStorage: (key, offset, bytes) => this.route(key, offset, bytes) }, (reason) => this.refuse(reason), size);
  }

  /** The .bin's last bytes (its zip directory), also what the pickle check of the same stream reads. */
  get tail() {
    return this.stream.tail;
  }

  /** A piece of the output at `position`: staged for direct writes when in order, else written at once. */
  private put(bytes: Buffer, position: number): void {
    if (!this.staged) {
      this.writes.push(this.temp.writeBuffered(bytes, bytes.length, position));
      return;
    }
    if (position !== this.cursor) throw new Error(`safetensors bytes out of order (${position}, expected ${this.cursor})`);
    this.cursor += bytes.length;
    this.writes.push(this.staged.append(bytes));
  }

  private refuse(reason: string): never {
    throw new InputError(`cannot be written as safetensors: ${reason}`, { file: this.source, hint: 'decode without --safetensors' });
  }

  get refusal(): Error | undefined {
    return this.refused.error;
  }

  async write(data: Buffer, length: number): Promise<void> {
    // Everything that reads `data` runs now, in call order; only the file writes are awaited. A
    // stream that stops parsing is not converted further, and still hashed to the end.
    this.refused.attempt(() => this.stream.push(data.subarray(0, length)));
    const writes = this.writes;
    this.writes = [];
    await Promise.all(writes);
  }

  private place(tensors: TensorLayout[]): Map<string, number> {
    let at = 0;
    const placed: Placed[] = [];
    // Laid out in the order their storages arrive (torch writes storages in sorted() order of their
    // keys), so the file is written front to back; any order is valid safetensors.
    const order = (a: TensorLayout, b: TensorLayout) =>
      a.storageKey < b.storageKey ? -1 : a.storageKey > b.storageKey ? 1 : a.offset - b.offset || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const t of [...tensors].sort(order)) {
      if (!isContiguous(t)) this.refuse(`tensor "${t.name}" is a view with strides ${JSON.stringify(t.stride)} (not contiguous); safetensors stores no strides`);
      const size = elementCount(t.shape) * t.elementBytes;
      const from = t.offset * t.elementBytes;
      if (from + size > t.storageNumel * t.elementBytes) this.refuse(`tensor "${t.name}" reaches past the end of its storage`);
      placed.push({ ...t, from, to: from + size, at, written: 0 });
      at += size;
    }
    let headerBytes: Buffer;
    try {
      headerBytes = buildHeader(placed.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, begin: t.at, end: t.at + t.to - t.from })), new Map([['format', 'pt']]));
    } catch (err) {
      if (err instanceof HeaderProblem) this.refuse(err.message);
      throw err;
    }
    this.header = headerBytes;
    this.dataBytes = at;
    for (const t of placed) t.at += headerBytes.length;
    // Front to back unless a storage feeds two tensors (then its bytes go to two places at once).
    const shared = new Set(placed.map((t) => t.storageKey)).size !== placed.length;
    this.staged = shared || !this.directDir ? undefined : StagedWriter.create(this.temp, this.directDir);
    this.put(headerBytes, 0);
    this.tensors = placed;
    const sizes = new Map<string, number>();
    for (const t of placed) {
      const list = this.byStorage.get(t.storageKey) ?? [];
      list.push(t);
      this.byStorage.set(t.storageKey, list);
      sizes.set(t.storageKey, t.storageNumel * t.elementBytes);
    }
    return sizes;
  }

  private route(key: string, offset: number, bytes: Buffer): void {
    for (const t of this.byStorage.get(key)!) {
      const from = Math.max(offset, t.from);
      const to = Math.min(offset + bytes.length, t.to);
      if (to <= from) continue;
      t.written += to - from;
      this.put(bytes.subarray(from - offset, to - offset), t.at + (from - t.from));
    }
  }

  /** After the whole .bin went by: the staged tail is written; `refusal` says whether it converted whole. */
  async finish(): Promise<void> {
    this.refused.attempt(() => this.checkWhole());
    await this.staged?.finish();
  }

  /** Every tensor must have all its bytes, and the header must be one safetensors readers accept. */
  private checkWhole(): void {
    this.stream.finishHead();
    const short = this.tensors!.find((t) => t.written !== t.to - t.from);
    if (short) this.refuse(`tensor "${short.name}" got ${short.written} of its ${short.to - short.from} bytes: storage ${short.storageKey} is missing or cut short`);
    this.stream.finish();
    try {
      checkHeader(this.header!, this.dataBytes, this.tensors!.length);
    } catch (err) {
      if (err instanceof HeaderProblem) this.refuse(`its safetensors header would be malformed: ${err.message}`);
      throw err;
    }
  }
}
