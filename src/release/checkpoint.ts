/**
 * What a PyTorch checkpoint's first bytes hold: the pickles that torch.load would run, found without
 * running them. A zip checkpoint (torch >= 1.6) starts with its `<archive>/data.pkl` entry; the legacy
 * format is a sequence of pickles (magic number, protocol, system info, the object, storage keys);
 * and any file that starts like a pickle is a pickle torch.load would unpickle before checking a
 * magic number. Facts from torch/serialization.py and shared/reference/torch-checkpoints.md.
 */
import { ALLOWED_GLOBALS } from './pickle-allowlist.js';
import { PickleError, PickleIncomplete, walkPickle, type PickleWalk } from './pickle.js';

const ZIP_LOCAL = 0x04034b50;
/** The legacy format's first pickle: PROTO 2, LONG1 of torch's MAGIC_NUMBER 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
/** Magic number, protocol version, system info, the object, the storage keys. */
const LEGACY_PICKLES = 5;

export type CheckpointFormat = 'zip' | 'legacy' | 'pickle';

export interface CheckpointScan {
  format: CheckpointFormat;
  /** The archive's top folder (zip), e.g. "pytorch_model-00001-of-00003". */
  archive?: string | undefined;
  /** The pickles walked, in file order; for zip and a plain pickle, one. */
  walks: PickleWalk[];
  /** Offset in the file just past the last pickle walked (zip: past data.pkl's STOP). */
  end: number;
}

/** The format, from the first bytes; undefined when the file is not a pickle-based checkpoint. */
export function checkpointFormat(head: Uint8Array): CheckpointFormat | undefined {
  if (head.length >= 4 && Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0) === ZIP_LOCAL) return 'zip';
  if (head.length >= LEGACY_MAGIC.length && LEGACY_MAGIC.equals(Buffer.from(head.buffer, head.byteOffset, LEGACY_MAGIC.length))) return 'legacy';
  if (head[0] === 0x80 && head[1] !== undefined && head[1] >= 2 && head[1] <= 5) return 'pickle';
  return undefined;
}

/** The bytes ended inside a zip entry header: at the end of a file, it was no archive to load. */
export class ZipHeaderIncomplete extends PickleIncomplete {}

/** A zip local file header: the entry's name and where its data starts. */
export function zipLocalEntry(bytes: Uint8Array, at: number): { name: string; method: number; flags: number; dataStart: number; extra: Uint8Array } {
  if (at + 30 > bytes.length) throw new ZipHeaderIncomplete('the zip header continues past the bytes at hand');
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.readUInt32LE(at) !== ZIP_LOCAL) throw new PickleError(`no zip entry header at byte ${at}`);
  const flags = view.readUInt16LE(at + 6);
  const method = view.readUInt16LE(at + 8);
  const nameLength = view.readUInt16LE(at + 26);
  const extraLength = view.readUInt16LE(at + 28);
  const dataStart = at + 30 + nameLength + extraLength;
  if (dataStart > bytes.length) throw new ZipHeaderIncomplete('the zip header continues past the bytes at hand');
  return {
    name: view.toString('utf8', at + 30, at + 30 + nameLength),
    method,
    flags,
    dataStart,
    extra: bytes.subarray(at + 30 + nameLength, dataStart),
  };
}

/**
 * Walks the pickles at the start of a checkpoint. Returns undefined for a zip that is not a torch
 * checkpoint (its first entry is not data.pkl: torch.load would refuse it without unpickling).
 * Throws PickleIncomplete when `bytes` end first (feed more), PickleError when the bytes are not
 * what the format says.
 */
export function scanCheckpoint(bytes: Uint8Array, format: CheckpointFormat): CheckpointScan | undefined {
  if (format === 'zip') {
    const entry = zipLocalEntry(bytes, 0);
    if (!entry.name.endsWith('data.pkl')) return undefined;
    if (entry.method !== 0) throw new PickleError(`data.pkl is compressed (method ${entry.method}); torch stores it uncompressed`);
    const walk = walkPickle(bytes, entry.dataStart);
    return { format, archive: entry.name.slice(0, -'data.pkl'.length).replace(/\/$/, ''), walks: [walk], end: walk.end };
  }
  if (format === 'pickle') {
    const walk = walkPickle(bytes, 0);
    return { format, walks: [walk], end: walk.end };
  }
  const walks: PickleWalk[] = [];
  let at = 0;
  for (let i = 0; i < LEGACY_PICKLES; i++) {
    const walk = walkPickle(bytes, at);
    walks.push(walk);
    at = walk.end;
  }
  return { format, walks, end: at };
}

/** Every global not on torch's weights-only allowlist, with what applied it ("os.system (REDUCE)"). */
export function unsafeGlobals(scan: CheckpointScan): string[] {
  const found = new Map<string, Set<string>>();
  for (const walk of scan.walks) {
    for (const g of walk.globals) {
      if (ALLOWED_GLOBALS.has(g.ref)) continue;
      const ops = found.get(g.ref) ?? new Set<string>();
      for (const op of g.ops) ops.add(op);
      found.set(g.ref, ops);
    }
  }
  return [...found].map(([ref, ops]) => `${ref} (${[...ops].join(', ')})`);
}
