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
import { checkpointFormat, dataPklDisagreement, scanZipHead, zip64Extra, zipLocalEntry, ZipHeaderIncomplete, type CheckpointScan } from '../release/checkpoint.js';
import { PickleIncomplete } from '../release/pickle.js';
import { elementCount, isContiguous, NotConvertible, stateDictTensors, type TensorLayout } from '../release/state-dict.js';
import { StreamTail } from '../release/stream-tail.js';
import { readZipDirectory, torchArchive, ZipStructureError } from '../release/zip-directory.js';
import { buildHeader, checkHeader, HeaderProblem } from './safetensors-header.js';
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
  private entry:
    | { kind: 'skip' | 'storage'; key?: string | undefined; start: number; length?: number | undefined; descriptor: boolean; zip64: boolean }
    | undefined;
  /** data.pkl as walked from the first entry. */
  private scan: CheckpointScan | undefined;
  /** Each storage entry as met in file order: the central directory must point torch at the same one. */
  private consumed = new Map<string, { name: string; headerAt: number; length: number }>();
  /** The .bin's last bytes (its zip directory), also what the pickle check of the same stream reads. */
  readonly tail: StreamTail;
  private header: Buffer | undefined;
  private dataBytes = 0;
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
    /** The .bin's size, when known: only its last bytes (the zip's directory) are kept. */
    size?: number,
  ) {
    this.path = temp.path;
    this.flush = temp.flush;
    this.tail = new StreamTail(size);
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
    this.tail.push(chunk);
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
      const scan = scanZipHead(bytes);
      if (!scan) this.refuse('it is not a torch zip checkpoint (its first entry is not data.pkl)');
      this.scan = scan;
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
        const descriptor = (e.flags & 0x08) !== 0;
        const length = storage ? storage.storageNumel * storage.elementBytes : descriptor ? undefined : e.compressedSize;
        if (storage) {
          // Its length comes from its framing too, and must be what the pickle says the storage holds.
          if (this.consumed.has(key!)) this.refuse(`its zip holds storage ${key} twice`);
          if (e.method !== 0) this.refuse(`storage ${key} is compressed (method ${e.method}); torch stores storages uncompressed`);
          if (!descriptor && e.compressedSize !== length) this.refuse(`storage ${key} holds ${e.compressedSize} bytes, its tensors need a storage of ${length}`);
          this.consumed.set(key!, { name: e.name, headerAt: base + i, length: length! });
        }
        this.entry = { kind: storage ? 'storage' : 'skip', key, start: base + e.dataStart, length, descriptor, zip64: zip64Extra(e.extra) !== undefined };
        i = e.dataStart;
      } else if (entry.kind === 'storage') {
        const offset = base + i - entry.start;
        const take = Math.min(buf.length - i, entry.length! - offset);
        this.route(entry.key!, offset, buf.subarray(i, i + take));
        i += take;
        if (offset + take === entry.length) {
          // Its data descriptor follows, if it has one: found like any other entry's, by the size it states.
          entry.kind = 'skip';
          if (!entry.descriptor) this.entry = undefined;
          if (--this.storagesLeft === 0) this.done = true;
        }
      } else if (!entry.descriptor) {
        const left = entry.start + entry.length! - (base + i);
        const take = Math.min(left, buf.length - i);
        i += take;
        if (take === left) this.entry = undefined;
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
    this.checkDirectory();
    try {
      checkHeader(this.header!, this.dataBytes, this.tensors!.length);
    } catch (err) {
      if (err instanceof HeaderProblem) this.refuse(`its safetensors header would be malformed: ${err.message}`);
      throw err;
    }
    await this.staged?.finish();
  }

  /**
   * torch finds data.pkl and every storage through the central directory: the entries read here in
   * file order must be those, with the lengths the pickle gives.
   */
  private checkDirectory(): void {
    const tail = this.tail.bytes();
    if (!tail) this.refuse('the file ended before its size');
    let view;
    try {
      view = torchArchive(readZipDirectory(tail.data, tail.start));
    } catch (err) {
      if (err instanceof ZipStructureError) this.refuse(`its zip structure is not what torch reads: ${err.message}`);
      throw err;
    }
    const disagreement = dataPklDisagreement(view, this.scan!.entry, this.scan!.end);
    if (disagreement) this.refuse(disagreement);
    for (const [key, met] of this.consumed) {
      const rec = view.record(`data/${key}`);
      if (!rec || rec.localOffset !== met.headerAt || rec.name !== met.name) this.refuse(`its central directory points torch at another entry for storage ${key} than the one in file order`);
      if (rec.size !== met.length) this.refuse(`storage ${key} holds ${rec.size} bytes, its tensors need a storage of ${met.length}`);
    }
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
