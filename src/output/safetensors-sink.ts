/**
 * Writes a torch zip checkpoint as safetensors while its bytes stream by (decode --safetensors). The
 * decoded .bin is never stored: data.pkl at the start gives every tensor's dtype, shape and storage,
 * the header is written first, and each storage's bytes are copied to the places of the tensors that
 * use them as they arrive. Memory is the head until data.pkl is read, then a few header bytes.
 *
 * safetensors: 8-byte little-endian header length, JSON header padded with spaces to a multiple of
 * 8 with `__metadata__: {"format": "pt"}`, then the tensors, contiguous and without holes (here in
 * the order their storages arrive).
 */
import type { OutputSink } from '../codec/pipeline.js';
import { InputError } from '../errors.js';
import { checkpointFormat, scanCheckpoint, zipLocalEntry, ZipHeaderIncomplete } from '../release/checkpoint.js';
import { PickleIncomplete } from '../release/pickle.js';
import { elementCount, isContiguous, NotConvertible, stateDictTensors, type TensorLayout } from '../release/state-dict.js';
import { StagedWriter } from './staged-writer.js';
import type { TempFile } from './temp-file.js';

interface Placed extends TensorLayout {
  /** Byte range in the storage. */
  from: number;
  to: number;
  /** Where its bytes go in the safetensors file. */
  at: number;
  written: number;
}

const DESCRIPTOR = 0x08074b50;
/** How much of a new piece is joined with the bytes kept from the last: more than any header or descriptor. */
const JOIN_BYTES = 256 << 10;
const ZIP64_EXTRA = 0x0001;

export class SafetensorsSink implements OutputSink {
  readonly path: string;
  /** Page-cache writes are written back as the pipeline goes, as for a .bin output. */
  readonly flush: (() => Promise<void>) | undefined;
  private head: Buffer[] = [];
  private headBytes = 0;
  private tensors: Placed[] | undefined;
  private byStorage = new Map<string, Placed[]>();
  /** Absolute offset of the next byte fed to the zip walker. */
  private pos = 0;
  private pending = Buffer.alloc(0);
  private entry: { kind: 'skip' | 'storage'; key?: string | undefined; start: number; length?: number | undefined; zip64: boolean } | undefined;
  private storagesLeft = 0;
  private done = false;
  private writes: Promise<unknown>[] = [];

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
  ) {
    this.path = temp.path;
    this.flush = temp.flush;
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

  async write(data: Buffer, length: number): Promise<void> {
    // Everything that reads `data` runs now, in call order; only the file writes are awaited.
    const chunk = data.subarray(0, length);
    if (!this.tensors) {
      // Read where it lies, and copied only when data.pkl goes on into the next piece: the copies of a
      // 4 MiB first chunk were a tenth of a conversion's peak memory.
      const head = this.head.length === 0 ? chunk : Buffer.concat([...this.head, chunk]);
      this.headBytes += length;
      if (!this.planFromHead(head, false)) {
        this.head = [this.head.length === 0 ? Buffer.from(chunk) : head];
        return;
      }
      this.head = [];
      this.feed(head);
    } else {
      this.feed(chunk);
    }
    const writes = this.writes;
    this.writes = [];
    await Promise.all(writes);
  }

  /** Reads data.pkl from the head; true once the tensors are placed and the header written. */
  private planFromHead(bytes: Buffer, ended: boolean): boolean {
    const format = checkpointFormat(bytes);
    // Too few bytes yet to tell the format by its magic number.
    if (format === undefined && !ended && bytes.length < 16) return false;
    if (format === 'legacy') this.refuse('it is in the legacy torch.save format; only zip checkpoints (torch >= 1.6) are converted');
    if (format !== 'zip') this.refuse('it is not a torch zip checkpoint');
    let root;
    try {
      const scan = scanCheckpoint(bytes, 'zip');
      if (!scan) this.refuse('it is not a torch zip checkpoint (its first entry is not data.pkl)');
      root = scan.walks[0]!.root;
    } catch (err) {
      if (err instanceof PickleIncomplete && !ended) return false;
      if (err instanceof InputError) throw err;
      this.refuse(`its data.pkl cannot be read (${(err as Error).message})`);
    }
    let tensors: TensorLayout[];
    try {
      tensors = stateDictTensors(root);
    } catch (err) {
      if (err instanceof NotConvertible) this.refuse(err.message);
      throw err;
    }
    this.place(tensors);
    return true;
  }

  private place(tensors: TensorLayout[]): void {
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
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    for (const t of placed) header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.at, t.at + t.to - t.from] };
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
    const headerBytes = Buffer.alloc(8 + Buffer.byteLength(json));
    headerBytes.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
    headerBytes.write(json, 8, 'utf8');
    for (const t of placed) t.at += headerBytes.length;
    // Front to back unless a storage feeds two tensors (then its bytes go to two places at once).
    const shared = new Set(placed.map((t) => t.storageKey)).size !== placed.length;
    this.staged = shared || !this.directDir ? undefined : StagedWriter.create(this.temp, this.directDir);
    this.put(headerBytes, 0);
    this.tensors = placed;
    for (const t of placed) {
      const list = this.byStorage.get(t.storageKey) ?? [];
      list.push(t);
      this.byStorage.set(t.storageKey, list);
    }
    this.storagesLeft = this.byStorage.size;
    if (this.storagesLeft === 0) this.done = true;
  }

  /**
   * Bytes kept from the last piece (a header or descriptor cut in two) are joined with the start of
   * the next piece only: joined with all of it, every storage boundary copied a whole chunk (4 MiB of
   * garbage each, enough to push a 10 GiB conversion past 150 MB of peak RSS).
   */
  private feed(bytes: Buffer): void {
    for (let at = 0; at < bytes.length; ) {
      const n = this.pending.length > 0 ? Math.min(JOIN_BYTES, bytes.length - at) : bytes.length - at;
      this.walk(bytes.subarray(at, at + n));
      at += n;
    }
  }

  /** Walks the zip entries in file order, routing storage bytes to their tensors. */
  private walk(bytes: Buffer): void {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, bytes]) : bytes;
    const base = this.pos - this.pending.length;
    let i = 0;
    let keepFrom = buf.length;
    while (i < buf.length && !this.done) {
      const entry = this.entry;
      if (!entry) {
        let e;
        try {
          e = zipLocalEntry(buf, i);
        } catch (err) {
          if (!(err instanceof ZipHeaderIncomplete)) this.refuse(`its zip structure ends before storage ${[...this.byStorage.keys()][0]}`);
          keepFrom = i;
          break;
        }
        const key = /\/data\/([^/]+)$/.exec(e.name)?.[1];
        const storage = key === undefined ? undefined : this.byStorage.get(key)?.[0];
        this.entry = { kind: storage ? 'storage' : 'skip', key, start: base + e.dataStart, length: storage ? storage.storageNumel * storage.elementBytes : undefined, zip64: hasZip64(e.extra) };
        i = e.dataStart;
      } else if (entry.kind === 'storage') {
        const offset = base + i - entry.start;
        const take = Math.min(buf.length - i, entry.length! - offset);
        this.route(entry.key!, offset, buf.subarray(i, i + take));
        i += take;
        if (offset + take === entry.length) {
          // Its data descriptor follows: found like any other entry's, by the size it states.
          entry.kind = 'skip';
          if (--this.storagesLeft === 0) this.done = true;
        }
      } else {
        const end = findDescriptorEnd(buf, i, base, entry.start, entry.zip64);
        if (end === undefined) {
          keepFrom = Math.max(i, buf.length - 23);
          break;
        }
        i = end;
        this.entry = undefined;
      }
    }
    // Keep what a header or descriptor may still need; never storage bytes (they were routed).
    this.pending = this.done ? Buffer.alloc(0) : Buffer.from(buf.subarray(Math.min(keepFrom, buf.length)));
    this.pos = base + buf.length;
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

  /** After the whole .bin went by: every tensor must have all its bytes, and the staged tail is written. */
  async finish(): Promise<void> {
    if (!this.tensors) {
      if (this.headBytes === 0) this.refuse('the file is empty');
      this.planFromHead(Buffer.concat(this.head), true);
    }
    const short = this.tensors!.find((t) => t.written !== t.to - t.from);
    if (short) this.refuse(`tensor "${short.name}" got ${short.written} of its ${short.to - short.from} bytes: storage ${short.storageKey} is missing or cut short`);
    await this.staged?.finish();
  }
}

/**
 * For an entry whose length the local header does not give (torch writes sizes in data descriptors):
 * the end of the descriptor whose stated size equals the bytes since the entry's data began.
 */
function findDescriptorEnd(buf: Buffer, i: number, base: number, start: number, zip64: boolean): number | undefined {
  const length = zip64 ? 24 : 16;
  for (let j = Math.max(i, start - base); j + length <= buf.length; j++) {
    if (buf.readUInt32LE(j) !== DESCRIPTOR) continue;
    const size = zip64 ? Number(buf.readBigUInt64LE(j + 8)) : buf.readUInt32LE(j + 8);
    if (size === base + j - start) return j + length;
  }
  return undefined;
}

function hasZip64(extra: Uint8Array): boolean {
  const view = Buffer.from(extra.buffer, extra.byteOffset, extra.length);
  for (let at = 0; at + 4 <= view.length; at += 4 + view.readUInt16LE(at + 2)) {
    if (view.readUInt16LE(at) === ZIP64_EXTRA) return true;
  }
  return false;
}
