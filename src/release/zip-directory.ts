/**
 * A zip's central directory, read from the file's last bytes the way torch's reader (miniz) reads it:
 * the end record found by scanning back from the end, zip64 end records when their locator is
 * there, then each directory record. torch.load finds every record through this directory (by a
 * name compared without ASCII case), never by walking the local headers, so this is what decides
 * which bytes torch takes as data.pkl and as each storage.
 */

export class ZipStructureError extends Error {}

export interface ZipRecord {
  /** Raw name bytes as latin1, as miniz compares them. */
  name: string;
  flags: number;
  method: number;
  compressedSize: number;
  size: number;
  /** The CRC-32 of its data, as the central directory gives it. */
  crc: number;
  /** Absolute offset of the record's local header. */
  localOffset: number;
}

export interface ZipDirectory {
  records: ZipRecord[];
  /** Absolute offset where the central directory starts: every entry's data ends before it. */
  start: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const ZIP64_EXTRA = 0x0001;
const MAX_COMMENT = 0xffff;

function u64(view: Buffer, at: number, what: string): number {
  const v = Number(view.readBigUInt64LE(at));
  if (!Number.isSafeInteger(v)) throw new ZipStructureError(`${what} is too large`);
  return v;
}

/**
 * Parses the directory from `tail`, the file's last bytes, which start at absolute offset
 * `tailStart`. Throws ZipStructureError when the directory is missing, cut off, reaches outside the
 * bytes kept, or when its records disagree with its end records.
 */
export function readZipDirectory(tail: Uint8Array, tailStart: number): ZipDirectory {
  const view = Buffer.from(tail.buffer, tail.byteOffset, tail.length);
  let eocd = -1;
  for (let at = view.length - 22; at >= 0 && at >= view.length - 22 - MAX_COMMENT; at--) {
    if (view.readUInt32LE(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw new ZipStructureError('it has no zip end record (the archive is cut off or is no zip)');
  if (eocd + 22 + view.readUInt16LE(eocd + 20) !== view.length) throw new ZipStructureError('its zip end record does not end the file');
  let total = view.readUInt16LE(eocd + 10);
  let size = view.readUInt32LE(eocd + 12);
  let offset = view.readUInt32LE(eocd + 16);
  let end = tailStart + eocd;
  if (view.readUInt16LE(eocd + 4) !== 0 || view.readUInt16LE(eocd + 6) !== 0 || view.readUInt16LE(eocd + 8) !== total) {
    throw new ZipStructureError('it is a multi-disk zip');
  }
  if (eocd >= 20 && view.readUInt32LE(eocd - 20) === ZIP64_LOCATOR) {
    const record = u64(view, eocd - 12, 'the zip64 end record offset') - tailStart;
    if (record < 0 || record + 56 > eocd - 20 || view.readUInt32LE(record) !== ZIP64_EOCD) {
      throw new ZipStructureError('its zip64 locator does not point at a zip64 end record within the bytes checked');
    }
    const total64 = u64(view, record + 32, 'the zip64 entry count');
    const size64 = u64(view, record + 40, 'the zip64 directory size');
    const offset64 = u64(view, record + 48, 'the zip64 directory offset');
    // Readers that trust the 32-bit fields and readers that trust the zip64 ones must see one directory.
    const agrees = (v32: number, v64: number, max: number) => v32 === v64 || v32 === max;
    if (!agrees(total, total64, 0xffff) || !agrees(size, size64, 0xffffffff) || !agrees(offset, offset64, 0xffffffff) || u64(view, record + 24, 'the zip64 entry count') !== total64) {
      throw new ZipStructureError('its zip64 end record and its zip end record disagree');
    }
    [total, size, offset, end] = [total64, size64, offset64, tailStart + record];
  } else if (total === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    throw new ZipStructureError('its zip end record needs a zip64 end record, which is missing');
  }
  if (offset + size !== end) throw new ZipStructureError('its central directory does not end where its end record begins');
  if (offset < tailStart) throw new ZipStructureError(`its central directory (${size} bytes) is larger than the ${view.length} bytes kept to check it`);
  const records: ZipRecord[] = [];
  let at = offset - tailStart;
  const stop = end - tailStart;
  while (at < stop) {
    if (at + 46 > stop || view.readUInt32LE(at) !== CENTRAL) throw new ZipStructureError(`its central directory has no record header at byte ${tailStart + at}`);
    const nameLength = view.readUInt16LE(at + 28);
    const extraLength = view.readUInt16LE(at + 30);
    const next = at + 46 + nameLength + extraLength + view.readUInt16LE(at + 32);
    if (next > stop) throw new ZipStructureError('a central directory record runs past the directory');
    const rec: ZipRecord = {
      name: view.toString('latin1', at + 46, at + 46 + nameLength),
      flags: view.readUInt16LE(at + 8),
      method: view.readUInt16LE(at + 10),
      crc: view.readUInt32LE(at + 16),
      compressedSize: view.readUInt32LE(at + 20),
      size: view.readUInt32LE(at + 24),
      localOffset: view.readUInt32LE(at + 42),
    };
    if (view.readUInt16LE(at + 34) !== 0) throw new ZipStructureError(`record ${rec.name} is on another disk`);
    applyZip64Extra(rec, view.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength));
    records.push(rec);
    at = next;
  }
  if (records.length !== total) throw new ZipStructureError(`its end record counts ${total} entries, its central directory holds ${records.length}`);
  return { records, start: offset };
}

/** The zip64 extra field holds, in this order, each of the sizes and the offset that say 0xffffffff. */
function applyZip64Extra(rec: ZipRecord, extra: Buffer): void {
  for (let at = 0; at + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(at);
    const length = extra.readUInt16LE(at + 2);
    if (at + 4 + length > extra.length) throw new ZipStructureError(`record ${rec.name} has an extra field that runs past its end`);
    if (id === ZIP64_EXTRA) {
      let p = at + 4;
      const take = (): number => {
        if (p + 8 > at + 4 + length) throw new ZipStructureError(`record ${rec.name} has a zip64 field too short for its sizes`);
        const v = u64(extra, p, `a zip64 size of ${rec.name}`);
        p += 8;
        return v;
      };
      if (rec.size === 0xffffffff) rec.size = take();
      if (rec.compressedSize === 0xffffffff) rec.compressedSize = take();
      if (rec.localOffset === 0xffffffff) rec.localOffset = take();
      return;
    }
    at += 4 + length;
  }
}

/**
 * torch lists the records as C strings (the list that tells a TorchScript archive by its
 * constants.pkl, read before data.pkl is looked for) but finds them by their whole names:
 * "a/constants.pkl\0x" is constants.pkl to the one and no record to the other.
 */
export function nulNameProblem(records: readonly ZipRecord[]): string | undefined {
  const rec = records.find((r) => r.name.includes('\0'));
  return rec && `its record ${JSON.stringify(rec.name)} has a NUL byte in its name, which torch reads as the end of the name in some places and not in others`;
}

/** ASCII-only lower case, as miniz compares names (MZ_TOLOWER). */
export function foldName(name: string): string {
  return name.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** A torch archive as torch.load sees it: the top folder and the records it finds by name. */
export interface TorchArchive {
  archive: string;
  directory: ZipDirectory;
  /** By folded name; names are unique even when folded. */
  byName: Map<string, ZipRecord>;
  /** `<archive>/<name>`, found as torch finds it. */
  record(name: string): ZipRecord | undefined;
}

/**
 * The directory checked for what torch and a streaming reader could read differently: every record
 * stored (torch writes nothing compressed), names unique without case, each inside the top folder
 * that torch takes from the first record, and each entry's data before the directory.
 */
export function torchArchive(directory: ZipDirectory): TorchArchive {
  const first = directory.records[0];
  if (!first) throw new ZipStructureError('it is a zip with no entries');
  const slash = first.name.indexOf('/');
  if (slash <= 0) throw new ZipStructureError(`its first record ${JSON.stringify(first.name)} is not inside a top folder, as torch requires`);
  const archive = first.name.slice(0, slash);
  const byName = new Map<string, ZipRecord>();
  const nul = nulNameProblem(directory.records);
  if (nul) throw new ZipStructureError(nul);
  for (const rec of directory.records) {
    const folded = foldName(rec.name);
    if (byName.has(folded)) throw new ZipStructureError(`it holds ${JSON.stringify(rec.name)} twice (names compared without case, as torch finds them)`);
    byName.set(folded, rec);
    if (!rec.name.startsWith(`${archive}/`)) throw new ZipStructureError(`its record ${JSON.stringify(rec.name)} is outside the top folder ${archive}/`);
    if (rec.method !== 0 || rec.compressedSize !== rec.size) throw new ZipStructureError(`its record ${JSON.stringify(rec.name)} is compressed (method ${rec.method}); torch stores every record`);
    if (rec.localOffset + 30 + rec.size > directory.start) throw new ZipStructureError(`its record ${JSON.stringify(rec.name)} reaches into the central directory`);
  }
  return { archive, directory, byName, record: (name) => byName.get(foldName(`${archive}/${name}`)) };
}
