/**
 * The zip container of torch 1.13.1's `torch.save` (PyTorchStreamWriter over miniz,
 * shared/reference/llama-conversion.md 3.3): records stored, flags 0x0808, times 0, each record's
 * data 64-byte aligned by an 'FB' extra field of 'Z's, a data descriptor after the data (24 bytes
 * when the local header carries a zip64 extra: a record of 4 GiB or more, or one that starts at or
 * past 4 GiB), the central directory in write order, and the zip64 end records always.
 * The layout depends only on names and sizes; the CRCs come in as the data goes by.
 */

const U32_MAX = 0xffffffff;
const ALIGN = 64;

export interface RecordLayout {
  name: string;
  size: number;
  headerAt: number;
  dataAt: number;
  descriptorAt: number;
  /** Just past the descriptor: the next record's header. */
  end: number;
  /** Whether the local header carries a zip64 extra (then the descriptor has u64 sizes). */
  zip64: boolean;
}

export interface ZipLayout {
  records: RecordLayout[];
  directoryAt: number;
  /** The central directory and the end records. */
  directoryBytes: number;
  total: number;
}

/** The size of the central directory record of `r` (46 bytes, the name, the zip64 extra of what overflowed). */
function centralSize(r: RecordLayout): number {
  const fields = (r.size >= U32_MAX ? 2 : 0) + (r.headerAt >= U32_MAX ? 1 : 0);
  return 46 + Buffer.byteLength(r.name) + (fields > 0 ? 4 + 8 * fields : 0);
}

function zip64LocalExtra(size: number, cursor: number): number {
  return size >= U32_MAX || cursor >= U32_MAX ? 4 + (size >= U32_MAX ? 16 : 0) + (cursor >= U32_MAX ? 8 : 0) : 0;
}

/** Where every byte goes, for records `{name, size}` written in this order. */
export function layTorchZip(records: readonly { name: string; size: number }[]): ZipLayout {
  let cursor = 0;
  const out: RecordLayout[] = [];
  for (const { name, size } of records) {
    const zip64 = zip64LocalExtra(size, cursor);
    const start = cursor + 30 + Buffer.byteLength(name) + 4 + zip64;
    const padding = (ALIGN - (start % ALIGN)) % ALIGN;
    const dataAt = start + padding;
    const descriptorAt = dataAt + size;
    const end = descriptorAt + (zip64 > 0 ? 24 : 16);
    out.push({ name, size, headerAt: cursor, dataAt, descriptorAt, end, zip64: zip64 > 0 });
    cursor = end;
  }
  const directoryBytes = out.reduce((n, r) => n + centralSize(r), 0) + 56 + 20 + 22;
  return { records: out, directoryAt: cursor, directoryBytes, total: cursor + directoryBytes };
}

/** The local header and extra field of `r`: everything from its header to its data. */
export function localHeader(r: RecordLayout): Buffer {
  const name = Buffer.from(r.name, 'utf8');
  const zip64 = zip64LocalExtra(r.size, r.headerAt);
  const b = Buffer.alloc(r.dataAt - r.headerAt);
  b.writeUInt32LE(0x04034b50, 0);
  b.writeUInt16LE(0x0808, 6);
  b.writeUInt16LE(name.length, 26);
  b.writeUInt16LE(r.dataAt - r.headerAt - 30 - name.length, 28);
  name.copy(b, 30);
  let at = 30 + name.length;
  if (zip64 > 0) {
    b.writeUInt16LE(1, at);
    b.writeUInt16LE(zip64 - 4, at + 2);
    at += 4;
    if (r.size >= U32_MAX) {
      b.writeBigUInt64LE(BigInt(r.size), at);
      at += 16; // then the compressed size, written as 0
    }
    if (r.headerAt >= U32_MAX) {
      b.writeBigUInt64LE(BigInt(r.headerAt), at);
      at += 8;
    }
  }
  b.write('FB', at, 'latin1');
  b.writeUInt16LE(b.length - at - 4, at + 2);
  b.fill('Z', at + 4);
  return b;
}

export function dataDescriptor(r: RecordLayout, crc: number): Buffer {
  const b = Buffer.alloc(r.end - r.descriptorAt);
  b.writeUInt32LE(0x08074b50, 0);
  b.writeUInt32LE(crc >>> 0, 4);
  if (r.zip64) {
    b.writeBigUInt64LE(BigInt(r.size), 8);
    b.writeBigUInt64LE(BigInt(r.size), 16);
  } else {
    b.writeUInt32LE(r.size, 8);
    b.writeUInt32LE(r.size, 12);
  }
  return b;
}

/** The central directory and the end records, once every record's CRC is known. */
export function directory(layout: ZipLayout, crcs: readonly number[]): Buffer {
  const b = Buffer.alloc(layout.directoryBytes);
  let at = 0;
  layout.records.forEach((r, i) => {
    const name = Buffer.from(r.name, 'utf8');
    const big = r.size >= U32_MAX;
    const far = r.headerAt >= U32_MAX;
    const extra = big || far ? 4 + (big ? 16 : 0) + (far ? 8 : 0) : 0;
    b.writeUInt32LE(0x02014b50, at);
    b.writeUInt16LE(0x0808, at + 8);
    b.writeUInt32LE(crcs[i]! >>> 0, at + 16);
    b.writeUInt32LE(big ? U32_MAX : r.size, at + 20);
    b.writeUInt32LE(big ? U32_MAX : r.size, at + 24);
    b.writeUInt16LE(name.length, at + 28);
    b.writeUInt16LE(extra, at + 30);
    b.writeUInt32LE(far ? U32_MAX : r.headerAt, at + 42);
    name.copy(b, at + 46);
    let e = at + 46 + name.length;
    if (extra > 0) {
      b.writeUInt16LE(1, e);
      b.writeUInt16LE(extra - 4, e + 2);
      e += 4;
      if (big) {
        b.writeBigUInt64LE(BigInt(r.size), e);
        b.writeBigUInt64LE(BigInt(r.size), e + 8);
        e += 16;
      }
      if (far) b.writeBigUInt64LE(BigInt(r.headerAt), e);
    }
    at += centralSize(r);
  });
  const count = BigInt(layout.records.length);
  const size = at;
  const end64 = layout.directoryAt + size;
  b.writeUInt32LE(0x06064b50, at);
  b.writeBigUInt64LE(44n, at + 4);
  b.writeUInt16LE(0x031e, at + 12);
  b.writeUInt16LE(45, at + 14);
  b.writeBigUInt64LE(count, at + 24);
  b.writeBigUInt64LE(count, at + 32);
  b.writeBigUInt64LE(BigInt(size), at + 40);
  b.writeBigUInt64LE(BigInt(layout.directoryAt), at + 48);
  at += 56;
  b.writeUInt32LE(0x07064b50, at);
  b.writeBigUInt64LE(BigInt(end64), at + 8);
  b.writeUInt32LE(1, at + 16);
  at += 20;
  b.writeUInt32LE(0x06054b50, at);
  b.writeUInt16LE(Math.min(layout.records.length, 0xffff), at + 8);
  b.writeUInt16LE(Math.min(layout.records.length, 0xffff), at + 10);
  b.writeUInt32LE(size, at + 12);
  b.writeUInt32LE(layout.directoryAt >= U32_MAX ? U32_MAX : layout.directoryAt, at + 16);
  return b;
}

/** The records of one shard as torch.save writes them: data.pkl, storages in string-sorted key order, version. */
export function shardRecords(archive: string, pickleBytes: number, storages: readonly { key: string; bytes: number }[]): { name: string; size: number }[] {
  const sorted = [...storages].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return [
    { name: `${archive}/data.pkl`, size: pickleBytes },
    ...sorted.map((s) => ({ name: `${archive}/data/${s.key}`, size: s.bytes })),
    { name: `${archive}/version`, size: 2 },
  ];
}
