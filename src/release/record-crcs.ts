/**
 * The CRC-32 of every record of a zip (a torch checkpoint) checked as its bytes stream by, against
 * the CRC its writer stored after it. A file that fails its digest then says where it differs:
 * which tensors' bytes are wrong. torch writes every record with a data descriptor and no sizes in
 * the local header, so a record ends where a descriptor sits whose sizes equal the distance from
 * the record's start (a false end needs 64 or more bits to agree by chance). The last bytes of a
 * chunk wait for the next one, in case a descriptor starts among them; nothing else is copied.
 */
import { crc32 } from 'node:zlib';

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const DESCRIPTOR = 0x08074b50;
const DESCRIPTOR_SIG = Buffer.from([0x50, 0x4b, 0x07, 0x08]);
/** A local header with a name this long is not a checkpoint's. */
const MAX_HEADER = 30 + 0xffff * 2;

export interface RecordCrc {
  name: string;
  /** Where the record's data starts in the file, and its size. */
  at: number;
  size: number;
  /** Whether the bytes give the CRC stored for them. */
  ok: boolean;
}

export interface RecordCrcReport {
  records: RecordCrc[];
  /** Set when the bytes stopped looking like zip records: where, and why. */
  broken: string | undefined;
  /** The records ended and the central directory began. */
  complete: boolean;
}

type State =
  | { kind: 'header' }
  | { kind: 'data'; name: string; at: number; left: number; size: number; descriptor: number; crc: number; stored: number | undefined }
  | { kind: 'scan'; name: string; at: number; descriptorBytes: number; crc: number; held: Buffer }
  | { kind: 'descriptor'; record: { name: string; at: number; size: number; crc: number }; bytes: number }
  | { kind: 'done' };

export class RecordCrcs {
  private state: State = { kind: 'header' };
  /** Bytes of a header or a descriptor that straddle chunks. */
  private pending: Buffer = Buffer.alloc(0);
  private position = 0;
  private readonly records: RecordCrc[] = [];
  private broken: string | undefined;
  private complete = false;

  feed(chunk: Uint8Array): void {
    let view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (view.length > 0 && this.state.kind !== 'done') {
      const used = this.step(view);
      this.position += used;
      view = view.subarray(used);
    }
  }

  /** Past the records (or lost in them): the rest of the file tells nothing more. */
  get done(): boolean {
    return this.state.kind === 'done';
  }

  finish(): RecordCrcReport {
    if (!this.complete && !this.broken) this.broken = `the file ends inside its records (at byte ${this.position})`;
    return { records: this.records, broken: this.broken, complete: this.complete };
  }

  private stop(why: string): number {
    this.broken = why;
    this.state = { kind: 'done' };
    return 0;
  }

  /** Consumes from the front of `view`; the bytes used. */
  private step(view: Buffer): number {
    const s = this.state;
    switch (s.kind) {
      case 'header':
        return this.header(view);
      case 'data': {
        const n = Math.min(s.left, view.length);
        s.crc = crc32(view.subarray(0, n), s.crc);
        s.left -= n;
        if (s.left === 0) {
          const record = { name: s.name, at: s.at, size: s.size, crc: s.crc };
          if (s.descriptor > 0) this.state = { kind: 'descriptor', record, bytes: s.descriptor };
          else this.end(record, s.stored!);
        }
        return n;
      }
      case 'descriptor': {
        const need = s.bytes - this.pending.length;
        const n = Math.min(need, view.length);
        this.pending = Buffer.concat([this.pending, view.subarray(0, n)]);
        if (this.pending.length < s.bytes) return n;
        const d = this.pending;
        this.pending = Buffer.alloc(0);
        // The signature is optional in a descriptor.
        const crcAt = d.readUInt32LE(0) === DESCRIPTOR && d.length >= 16 ? 4 : 0;
        this.end(s.record, d.readUInt32LE(crcAt));
        return n;
      }
      case 'scan':
        return this.scan(s, view);
      default:
        return view.length;
    }
  }

  private end(record: { name: string; at: number; size: number; crc: number }, stored: number): void {
    this.records.push({ name: record.name, at: record.at, size: record.size, ok: record.crc >>> 0 === stored >>> 0 });
    this.state = { kind: 'header' };
  }

  private header(view: Buffer): number {
    const have = Buffer.concat([this.pending, view.subarray(0, Math.min(view.length, MAX_HEADER))]);
    if (have.length < 4) return this.hold(view);
    const sig = have.readUInt32LE(0);
    if (sig === CENTRAL) {
      this.complete = true;
      this.state = { kind: 'done' };
      this.pending = Buffer.alloc(0);
      return view.length;
    }
    const start = this.position - this.pending.length;
    if (sig !== LOCAL) return this.stop(`no zip record at byte ${start}`);
    if (have.length < 30) return this.hold(view);
    const flags = have.readUInt16LE(6);
    const method = have.readUInt16LE(8);
    const crc = have.readUInt32LE(14);
    let csize = have.readUInt32LE(18);
    const nameLength = have.readUInt16LE(26);
    const extraLength = have.readUInt16LE(28);
    const headerLength = 30 + nameLength + extraLength;
    if (have.length < headerLength) return this.hold(view);
    if (method !== 0) return this.stop(`record at byte ${start} is compressed`);
    const name = have.toString('utf8', 30, 30 + nameLength);
    const zip64 = this.zip64Size(have.subarray(30 + nameLength, headerLength), csize);
    if (zip64 === null) return this.stop(`record "${name}" has a zip64 extra field that cannot be read`);
    csize = zip64?.size ?? csize;
    const used = headerLength - this.pending.length;
    this.pending = Buffer.alloc(0);
    const at = start + headerLength;
    const descriptorBytes = flags & 0x08 ? (zip64 ? 24 : 16) : 0;
    if (!(flags & 0x08) || csize > 0) {
      this.state = { kind: 'data', name, at, left: csize, size: csize, descriptor: descriptorBytes, crc: 0, stored: flags & 0x08 ? undefined : crc };
      if (csize === 0) {
        // Empty data: the descriptor (or the header's CRC) follows at once.
        this.state = descriptorBytes > 0 ? { kind: 'descriptor', record: { name, at, size: 0, crc: 0 }, bytes: descriptorBytes } : { kind: 'header' };
        if (descriptorBytes === 0) this.records.push({ name, at, size: 0, ok: crc === 0 });
      }
    } else {
      this.state = { kind: 'scan', name, at, descriptorBytes, crc: 0, held: Buffer.alloc(0) };
    }
    return used;
  }

  /** The zip64 extra's size when the local header's is 0xffffffff; undefined without one; null when unreadable. */
  private zip64Size(extra: Buffer, csize: number): { size: number } | undefined | null {
    for (let at = 0; at + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(at);
      const length = extra.readUInt16LE(at + 2);
      if (id === 1) {
        if (csize !== 0xffffffff) return { size: csize };
        if (length < 16 || at + 4 + 16 > extra.length) return null;
        return { size: Number(extra.readBigUInt64LE(at + 4 + 8)) };
      }
      at += 4 + length;
    }
    return undefined;
  }

  private hold(view: Buffer): number {
    this.pending = Buffer.concat([this.pending, view]);
    if (this.pending.length > MAX_HEADER) return this.stop(`no readable zip record at byte ${this.position - this.pending.length + view.length}`);
    return view.length;
  }

  /**
   * Data of unknown size: CRCs everything but the last bytes that could begin a descriptor, which
   * wait (copied, a few bytes) for the next chunk.
   */
  private scan(s: Extract<State, { kind: 'scan' }>, view: Buffer): number {
    const d = s.descriptorBytes;
    if (s.held.length > 0) {
      const held = s.held;
      const joined = Buffer.concat([held, view.subarray(0, d)]);
      for (let i = joined.indexOf(DESCRIPTOR_SIG); i >= 0 && i < held.length && i + d <= joined.length; i = joined.indexOf(DESCRIPTOR_SIG, i + 1)) {
        const size = this.position - held.length + i - s.at;
        if (isDescriptor(joined, i, size, d)) {
          s.crc = crc32(held.subarray(0, i), s.crc);
          this.end({ name: s.name, at: s.at, size, crc: s.crc }, joined.readUInt32LE(i + 4));
          return i + d - held.length;
        }
      }
      // Held bytes a descriptor could still start at wait on, with a view too short to rule them out.
      const ruled = Math.min(held.length, joined.length - d + 1);
      s.crc = crc32(held.subarray(0, Math.max(0, ruled)), s.crc);
      if (view.length < d) {
        s.held = Buffer.concat([held.subarray(Math.max(0, ruled)), view]);
        return view.length;
      }
      s.held = Buffer.alloc(0);
    }
    for (let i = view.indexOf(DESCRIPTOR_SIG); i >= 0 && i + d <= view.length; i = view.indexOf(DESCRIPTOR_SIG, i + 1)) {
      const size = this.position + i - s.at;
      if (isDescriptor(view, i, size, d)) {
        s.crc = crc32(view.subarray(0, i), s.crc);
        this.end({ name: s.name, at: s.at, size, crc: s.crc }, view.readUInt32LE(i + 4));
        return i + d;
      }
    }
    const keep = Math.min(view.length, d - 1);
    s.crc = crc32(view.subarray(0, view.length - keep), s.crc);
    s.held = Buffer.from(view.subarray(view.length - keep));
    return view.length;
  }
}

/** Whether the `d`-byte descriptor at `i` (u64 sizes when 24 bytes) closes a record of `size` bytes. */
function isDescriptor(b: Buffer, i: number, size: number, d: number): boolean {
  if (d === 24) return Number(b.readBigUInt64LE(i + 8)) === size && Number(b.readBigUInt64LE(i + 16)) === size;
  return b.readUInt32LE(i + 8) === size && b.readUInt32LE(i + 12) === size;
}
