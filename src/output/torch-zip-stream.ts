/**
 * The one streaming reader of a torch zip checkpoint that every converting sink uses (safetensors,
 * GGUF): data.pkl at the start gives every tensor's dtype, shape and storage (handed to `onTensors`
 * before any storage byte), then each storage's bytes are handed to `onStorage` as they arrive,
 * framed by their own sizes. At the end, `finish` holds the entries read in file order to the
 * central directory torch reads, and every storage to the size its tensors need. Memory: the head
 * until data.pkl is read, then a few header bytes.
 */
import { InputError } from '../errors.js';
import { checkpointFormat, dataPklDisagreement, scanZipHead, zip64Extra, zipLocalEntry, ZipHeaderIncomplete, type CheckpointScan } from '../release/checkpoint.js';
import { PickleIncomplete } from '../release/pickle.js';
import { NotConvertible, stateDictTensors, type TensorLayout } from '../release/state-dict.js';
import { StreamTail } from '../release/stream-tail.js';
import { readZipDirectory, torchArchive, ZipStructureError, type TorchArchive } from '../release/zip-directory.js';

const DESCRIPTOR = 0x08074b50;
/** How much of a new piece is joined with the bytes kept from the last: more than any header or descriptor. */
const JOIN_BYTES = 256 << 10;

export interface TorchZipHandlers {
  /** data.pkl's tensors; returns each storage's size in bytes (what its tensors need), by key. */
  onTensors(tensors: TensorLayout[]): Map<string, number>;
  /** Bytes [offset, offset + bytes.length) of storage `key`, in order within the storage. */
  onStorage(key: string, offset: number, bytes: Buffer): void;
}

export class TorchZipStream {
  private head: Buffer[] = [];
  private headBytes = 0;
  private storages: Map<string, number> | undefined;
  private pos = 0;
  private pending = Buffer.alloc(0);
  private entry:
    | { kind: 'skip' | 'storage'; key?: string | undefined; start: number; length?: number | undefined; descriptor: boolean; zip64: boolean }
    | undefined;
  private scan: CheckpointScan | undefined;
  /** Each storage entry as met in file order: the central directory must point torch at the same one. */
  private consumed = new Map<string, { name: string; headerAt: number; length: number }>();
  /** The .bin's last bytes (its zip directory), also what the pickle check of the same stream reads. */
  /** The central directory, once the whole file went by and it was checked. */
  archive: TorchArchive | undefined;
  readonly tail: StreamTail;
  private storagesLeft = 0;
  private done = false;

  constructor(
    private readonly handlers: TorchZipHandlers,
    /** Says why the file cannot be converted: thrown, naming the file. */
    private readonly refuse: (reason: string) => never,
    /** The .bin's size, when known: only its last bytes (the zip's directory) are kept. */
    size?: number,
  ) {
    this.tail = new StreamTail(size);
  }

  /** The next bytes of the file (the caller may reuse its buffer). */
  push(chunk: Buffer): void {
    this.tail.push(chunk);
    if (this.storages) {
      this.feed(chunk);
      return;
    }
    // Read where it lies, and copied only when data.pkl goes on into the next piece.
    const head = this.head.length === 0 ? chunk : Buffer.concat([...this.head, chunk]);
    this.headBytes += chunk.length;
    if (!this.planFromHead(head, false)) {
      this.head = [this.head.length === 0 ? Buffer.from(chunk) : head];
      return;
    }
    this.head = [];
    this.feed(head);
  }

  /** At the end of a file shorter than its data.pkl: the tensors, or why there are none. */
  finishHead(): void {
    if (this.storages) return;
    if (this.headBytes === 0) this.refuse('the file is empty');
    this.planFromHead(Buffer.concat(this.head), true);
  }

  /** After the whole file went by: the structure torch reads must be the one walked. */
  finish(): void {
    this.finishHead();
    for (const [key, size] of this.storages!) {
      const met = this.consumed.get(key);
      if (!met || (this.entry?.key === key && this.entry.kind === 'storage')) this.refuse(`storage ${key} (${size} bytes) is missing or cut short`);
    }
    this.checkDirectory();
  }

  /** Reads data.pkl from the head; true once the tensors are handed over. */
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
    this.storages = this.handlers.onTensors(tensors);
    this.storagesLeft = this.storages.size;
    if (this.storagesLeft === 0) this.done = true;
    return true;
  }

  /**
   * Bytes kept from the last piece (a header or descriptor cut in two) are joined with the start of
   * the next piece only: joined with all of it, every storage boundary copied a whole chunk.
   */
  private feed(bytes: Buffer): void {
    for (let at = 0; at < bytes.length; ) {
      const n = this.pending.length > 0 ? Math.min(JOIN_BYTES, bytes.length - at) : bytes.length - at;
      this.walk(bytes.subarray(at, at + n));
      at += n;
    }
  }

  /** Walks the zip entries in file order, handing storage bytes on. */
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
          if (!(err instanceof ZipHeaderIncomplete)) this.refuse(`its zip structure ends before storage ${[...this.storages!.keys()][0]}`);
          keepFrom = i;
          break;
        }
        const key = /\/data\/([^/]+)$/.exec(e.name)?.[1];
        const size = key === undefined ? undefined : this.storages!.get(key);
        const descriptor = (e.flags & 0x08) !== 0;
        const length = size ?? (descriptor ? undefined : e.compressedSize);
        if (size !== undefined) {
          // Its length comes from its framing too, and must be what the pickle says the storage holds.
          if (this.consumed.has(key!)) this.refuse(`its zip holds storage ${key} twice`);
          if (e.method !== 0) this.refuse(`storage ${key} is compressed (method ${e.method}); torch stores storages uncompressed`);
          if (!descriptor && e.compressedSize !== length) this.refuse(`storage ${key} holds ${e.compressedSize} bytes, its tensors need a storage of ${length}`);
          this.consumed.set(key!, { name: e.name, headerAt: base + i, length: length! });
        }
        this.entry = { kind: size !== undefined ? 'storage' : 'skip', key, start: base + e.dataStart, length, descriptor, zip64: zip64Extra(e.extra) !== undefined };
        i = e.dataStart;
        if (size === 0) this.endStorage();
      } else if (entry.kind === 'storage') {
        const offset = base + i - entry.start;
        const take = Math.min(buf.length - i, entry.length! - offset);
        this.handlers.onStorage(entry.key!, offset, buf.subarray(i, i + take));
        i += take;
        if (offset + take === entry.length) this.endStorage();
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
    // Keep what a header or descriptor may still need; never storage bytes (they were handed on).
    this.pending = this.done ? Buffer.alloc(0) : Buffer.from(buf.subarray(Math.min(keepFrom, buf.length)));
    this.pos = base + buf.length;
  }

  /** A storage's last byte went by: its data descriptor follows, if it has one. */
  private endStorage(): void {
    const entry = this.entry!;
    entry.kind = 'skip';
    if (!entry.descriptor) this.entry = undefined;
    if (--this.storagesLeft === 0) this.done = true;
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
    this.archive = view;
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
