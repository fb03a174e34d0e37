/**
 * What torch.load (1.13) would unpickle from a file, found without running it, in torch's own order:
 * a file starting `PK\x03\x04` is a zip, whose `<archive>/data.pkl` is found through the central
 * directory (see zip-directory.ts); otherwise tarfile is tried (a legacy tar checkpoint, see
 * tar-checkpoint.ts); otherwise pickles are loaded one after another from byte 0 (the legacy format:
 * magic number, protocol version, system info, the object, the storage keys), stopping where torch
 * stops. Facts from
 * torch/serialization.py, caffe2/serialize/inline_container.cc and shared/reference/torch-checkpoints.md.
 */
import { ALLOWED_GLOBALS } from './pickle-allowlist.js';
import { PickleError, PickleIncomplete, walkPickle, type GlobalUse, type PickleWalk } from './pickle.js';
import type { TorchArchive } from './zip-directory.js';

const ZIP_LOCAL = 0x04034b50;
/** The legacy format's first pickle: PROTO 2, LONG1 of torch's MAGIC_NUMBER 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
/** torch's legacy PROTOCOL_VERSION, the second pickle. */
const LEGACY_PROTOCOL = 1001;
/** Magic number, protocol version, system info, the object, the storage keys. */
const LEGACY_PICKLES = 5;

export type CheckpointFormat = 'zip' | 'legacy' | 'pickle' | 'tar';

export interface CheckpointScan {
  format: CheckpointFormat;
  /** The zip's first entry, walked as data.pkl (its local header). */
  entry?: ZipLocalEntry | undefined;
  /** The archive's top folder (zip), e.g. "pytorch_model-00001-of-00003". */
  archive?: string | undefined;
  /** The pickles walked, in file order; for zip and a plain pickle, one. */
  walks: PickleWalk[];
  /** Offset in the file just past the last pickle walked (zip: past data.pkl's STOP). */
  end: number;
}

export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0) === ZIP_LOCAL;
}

/**
 * The format, from the first bytes, as torch.load tells them apart; undefined when they are no
 * zip and do not start like a pickle protocol 2-5 (such files are judged only under a checkpoint's
 * name, where torch.load would still unpickle them from byte 0).
 */
export function checkpointFormat(head: Uint8Array): CheckpointFormat | undefined {
  if (isZip(head)) return 'zip';
  if (head.length >= LEGACY_MAGIC.length && LEGACY_MAGIC.equals(Buffer.from(head.buffer, head.byteOffset, LEGACY_MAGIC.length))) return 'legacy';
  if (head[0] === 0x80 && head[1] !== undefined && head[1] >= 2 && head[1] <= 5) return 'pickle';
  return undefined;
}

/** The bytes ended inside a zip entry header: at the end of a file, it was no archive to load. */
export class ZipHeaderIncomplete extends PickleIncomplete {}

export interface ZipLocalEntry {
  name: string;
  method: number;
  flags: number;
  /** As the local header states them (0 when a data descriptor follows the data). */
  compressedSize: number;
  size: number;
  dataStart: number;
  extra: Uint8Array;
}

/** A zip local file header: the entry's name and where its data starts. */
export function zipLocalEntry(bytes: Uint8Array, at: number): ZipLocalEntry {
  if (at + 30 > bytes.length) throw new ZipHeaderIncomplete('the zip header continues past the bytes at hand');
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.readUInt32LE(at) !== ZIP_LOCAL) throw new PickleError(`no zip entry header at byte ${at}`);
  const nameLength = view.readUInt16LE(at + 26);
  const extraLength = view.readUInt16LE(at + 28);
  const dataStart = at + 30 + nameLength + extraLength;
  if (dataStart > bytes.length) throw new ZipHeaderIncomplete('the zip header continues past the bytes at hand');
  const extra = bytes.subarray(at + 30 + nameLength, dataStart);
  let compressedSize = view.readUInt32LE(at + 18);
  let size = view.readUInt32LE(at + 22);
  const zip64 = zip64Extra(extra);
  if (zip64 && (size === 0xffffffff || compressedSize === 0xffffffff)) {
    let p = 0;
    if (size === 0xffffffff && p + 8 <= zip64.length) [size, p] = [Number(zip64.readBigUInt64LE(p)), p + 8];
    if (compressedSize === 0xffffffff && p + 8 <= zip64.length) compressedSize = Number(zip64.readBigUInt64LE(p));
  }
  return {
    name: view.toString('latin1', at + 30, at + 30 + nameLength),
    method: view.readUInt16LE(at + 8),
    flags: view.readUInt16LE(at + 6),
    compressedSize,
    size,
    dataStart,
    extra,
  };
}

/** The data of a zip64 extra field (id 1), if the extra fields hold one. */
export function zip64Extra(extra: Uint8Array): Buffer | undefined {
  const view = Buffer.from(extra.buffer, extra.byteOffset, extra.length);
  for (let at = 0; at + 4 <= view.length; at += 4 + view.readUInt16LE(at + 2)) {
    if (view.readUInt16LE(at) === 1) return view.subarray(at + 4, Math.min(view.length, at + 4 + view.readUInt16LE(at + 2)));
  }
  return undefined;
}

/** `<archive>/data.pkl` with one top folder, as torch writes it (names compared without ASCII case). */
export function isDataPklName(name: string): boolean {
  return /^[^/]+\/data\.pkl$/i.test(name);
}

/**
 * Walks the zip's first entry as data.pkl. Returns undefined when that entry is not named like
 * data.pkl (the central directory decides, at the end, whether torch would load another one).
 * Throws PickleIncomplete when `bytes` end first (feed more), PickleError when the bytes are not
 * what the format says.
 */
export function scanZipHead(bytes: Uint8Array): CheckpointScan | undefined {
  const entry = zipLocalEntry(bytes, 0);
  if (!isDataPklName(entry.name)) return undefined;
  if (entry.method !== 0) throw new PickleError(`data.pkl is compressed (method ${entry.method}); torch stores it uncompressed`);
  const walk = walkPickle(bytes, entry.dataStart);
  return { format: 'zip', entry, archive: entry.name.slice(0, entry.name.indexOf('/')), walks: [walk], end: walk.end };
}

/**
 * Why torch would not load exactly the data.pkl walked from the first entry (`entry`; its pickle
 * ends at `end`, when it was walked to its end): the central directory names another, the entry's
 * local header disagrees with its record, or the record is not the pickle's length. Undefined when
 * torch loads the bytes walked.
 */
export function dataPklDisagreement(view: TorchArchive, entry: ZipLocalEntry | undefined, end: number | undefined): string | undefined {
  const record = view.record('data.pkl');
  if (!record || record.localOffset !== 0 || !entry || entry.name !== record.name || !isDataPklName(entry.name)) {
    return `its central directory points torch at ${JSON.stringify(record?.name ?? 'no data.pkl')} at byte ${record?.localOffset ?? '-'}, not at the first entry ${JSON.stringify(entry?.name ?? '')}, where torch.save writes data.pkl`;
  }
  if (entry.method !== 0 || ((entry.flags & 0x08) === 0 && (entry.compressedSize !== record.compressedSize || entry.size !== record.size))) {
    return `the local header of ${entry.name} disagrees with its central directory record`;
  }
  if (end !== undefined && end - entry.dataStart !== record.size) return `its data.pkl record holds ${record.size} bytes, but its pickle ends after ${end - entry.dataStart}`;
  return undefined;
}

/**
 * Walks the pickles that torch's legacy path loads from byte 0: one after another, until the five
 * of the legacy format are read or a value shows torch would stop there (a first pickle that is not
 * the magic number, a second that is not the protocol version). A value the walker cannot know
 * (a large integer, a call's result) is taken as one that lets torch go on: walking further only
 * finds more.
 * A PickleError carries the globals of every pickle before it as well as its own.
 */
export function scanPickles(bytes: Uint8Array): CheckpointScan {
  const walks: PickleWalk[] = [];
  let at = 0;
  try {
    for (let i = 0; i < LEGACY_PICKLES; i++) {
      const walk = walkPickle(bytes, at);
      walks.push(walk);
      at = walk.end;
      const v = walk.root;
      // torch compares the first two with `!=`; a call's result may be a tensor, whose `!=` is a
      // tensor of False that lets torch go on (a tensor holding 1001 passes the protocol check).
      const unknown = v.t === 'other' || v.t === 'call';
      if (i === 0 && !unknown) break;
      if (i === 1 && !unknown && !(v.t === 'int' && v.v === LEGACY_PROTOCOL)) break;
    }
  } catch (err) {
    if (err instanceof PickleError) err.globalsBefore = [...walks.flatMap((w) => w.globals), ...err.globalsBefore];
    throw err;
  }
  return { format: checkpointFormat(bytes) === 'legacy' ? 'legacy' : 'pickle', walks, end: at };
}

/** Each global not on torch's weights-only allowlist, with what applied it ("os.system (REDUCE)"). */
export function disallowedGlobals(globals: readonly GlobalUse[]): string[] {
  const found = new Map<string, Set<string>>();
  for (const g of globals) {
    if (ALLOWED_GLOBALS.has(g.ref)) continue;
    const ops = found.get(g.ref) ?? new Set<string>();
    for (const op of g.ops) ops.add(op);
    found.set(g.ref, ops);
  }
  return [...found].map(([ref, ops]) => `${ref} (${[...ops].join(', ')})`);
}

export function unsafeGlobals(scan: CheckpointScan): string[] {
  return disallowedGlobals(scan.walks.flatMap((w) => w.globals));
}
