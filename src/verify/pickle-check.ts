/**
 * The pickle check on a file's bytes as they stream by: it finds what torch.load would unpickle the
 * way torch finds it (see release/checkpoint.ts) and judges every global against torch's
 * weights-only allowlist. It costs no extra pass: the pickles of the legacy format sit at the start;
 * a zip's data.pkl is walked at the start and judged at the end, once the central directory (kept
 * from the file's last bytes) shows it is the data.pkl torch would load.
 */
import { checkpointFormat, dataPklDisagreement, disallowedGlobals, isZip, scanPickles, scanZipHead, zipLocalEntry, type CheckpointScan, type ZipLocalEntry } from '../release/checkpoint.js';
import { isPickleOpcode, PickleError, PickleIncomplete } from '../release/pickle.js';
import { StreamTail } from '../release/stream-tail.js';
import { LegacyTarWalk } from '../release/tar-checkpoint.js';
import { isTar, TAR_BLOCK } from '../release/tar-header.js';
import { foldName, nulNameProblem, readZipDirectory, torchArchive, ZipStructureError } from '../release/zip-directory.js';
import type { Diagnosis } from '../types.js';
import { invalidPickle, unsafePickle } from './diagnosis-text.js';

export type PickleVerdict =
  /** Nothing torch.load would unpickle. */
  | { status: 'none' }
  | { status: 'safe'; scan: CheckpointScan }
  /** `globals`: each global outside the allowlist, with what applied it. */
  | { status: 'unsafe'; globals: string[] }
  | { status: 'invalid'; reason: string };

/** Pickles larger than this are not state dicts (a 30B shard's data.pkl is well under a megabyte). */
const MAX_PICKLE_BYTES = 256 << 20;

/** Names torch.load (or pickle.load) is pointed at: everything under them is judged as torch reads it. */
export const CHECKPOINT_NAME = /\.(bin|pt|pth|ckpt|pkl|pickle)$/i;

type Kind = 'zip' | 'tar' | 'pickles' | 'skip';

/** A pickle that broke: Python ran what came before, so a disallowed global there makes it unsafe. */
function broken(err: PickleError, reason: string): PickleVerdict {
  const globals = disallowedGlobals(err.globalsBefore);
  return globals.length > 0 ? { status: 'unsafe', globals } : { status: 'invalid', reason };
}

function judged(scan: CheckpointScan): PickleVerdict {
  const globals = disallowedGlobals(scan.walks.flatMap((w) => w.globals));
  return globals.length > 0 ? { status: 'unsafe', globals } : { status: 'safe', scan };
}

export class PickleCheck {
  private readonly checkpointName: boolean;
  private kind: Kind | undefined;
  /** The file's first bytes, copied only while what is read from them goes on past a chunk. */
  private held: Buffer = Buffer.alloc(0);
  /** Decided before the end (the pickles of a legacy file). */
  private decided: PickleVerdict | undefined;
  /** A zip: its first entry, and data.pkl's walk when that entry is one. */
  private zipEntry: ZipLocalEntry | undefined;
  private zipScan: CheckpointScan | undefined;
  private zipError: PickleError | undefined;
  private zipHeadDone = false;
  private tail: StreamTail | undefined;
  private tar: LegacyTarWalk | undefined;

  /**
   * `name`: the file's name; `size`: its size when known (only the last bytes are then copied);
   * `sharedTail`: the last bytes of the same stream, kept by another reader of it (the safetensors
   * sink), so that they are kept once.
   */
  constructor(
    name: string,
    private readonly size?: number,
    private readonly sharedTail?: StreamTail,
  ) {
    this.checkpointName = CHECKPOINT_NAME.test(name);
  }

  /** Feeds the file's next bytes (the caller may reuse its buffer: what is still needed is copied). */
  feed(chunk: Uint8Array): void {
    if (this.kind === 'skip' || this.decided) return;
    if (this.tar) return this.tar.feed(chunk);
    if (this.kind === undefined) {
      const bytes = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
      if (!this.classify(bytes, false)) {
        this.held = bytes === chunk ? Buffer.from(chunk) : (bytes as Buffer);
        return;
      }
      // The first bytes fed after the kind is known are all those held so far and this chunk.
      this.held = Buffer.alloc(0);
      if (this.kind === 'skip' || this.decided) return;
      // classify() may have set it: read it afresh, not as narrowed above.
      const tar = this.tar as LegacyTarWalk | undefined;
      if (tar) return tar.feed(bytes);
      if (!this.sharedTail) this.tail?.push(bytes);
      this.readHead(bytes, chunk === bytes);
      return;
    }
    if (!this.sharedTail) this.tail?.push(chunk);
    const bytes = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    this.readHead(bytes, bytes === chunk);
  }

  /** The verdict once the whole file went by. */
  finish(): PickleVerdict {
    if (this.kind === undefined) this.classify(this.held, true);
    if (this.decided) return this.decided;
    if (this.tar) return this.judgeTar(this.tar);
    if (this.kind === 'skip' || this.kind === undefined) return { status: 'none' };
    if (this.kind === 'pickles') return this.judgePickles(this.held, true) ?? { status: 'none' };
    if (!this.zipHeadDone) this.readZip(this.held, true);
    return this.judgeZip();
  }

  /** Decides the kind from the first bytes; false when more are needed. */
  private classify(bytes: Uint8Array, ended: boolean): boolean {
    if (bytes.length === 0 && !ended) return false;
    if (isZip(bytes)) {
      this.kind = 'zip';
      this.tail = this.sharedTail ?? new StreamTail(this.size);
      return true;
    }
    if (bytes.length < 4 && !ended) return false;
    const format = checkpointFormat(bytes);
    if (!this.checkpointName && format !== 'legacy') {
      this.kind = 'skip';
      return true;
    }
    if (bytes.length < TAR_BLOCK && !ended) return false;
    if (isTar(bytes)) {
      this.kind = 'tar';
      this.tar = new LegacyTarWalk();
      return true;
    }
    this.kind = 'pickles';
    if (bytes.length === 0 || !isPickleOpcode(bytes[0]!)) {
      // Python stops at the first byte: nothing is unpickled, nothing can run (an XOR payload, say).
      this.kind = 'skip';
    }
    return true;
  }

  private readHead(bytes: Uint8Array, isChunk: boolean): void {
    const keep = this.kind === 'zip' ? this.readZip(bytes, false) : (this.decided = this.judgePickles(bytes, false)) === undefined;
    if (!keep) this.held = Buffer.alloc(0);
    else this.held = isChunk ? Buffer.from(bytes) : (bytes as Buffer);
  }

  private judgePickles(bytes: Uint8Array, ended: boolean): PickleVerdict | undefined {
    try {
      return judged(scanPickles(bytes));
    } catch (err) {
      if (!(err instanceof PickleError)) throw err;
      if (err instanceof PickleIncomplete) {
        if (!ended && bytes.length <= MAX_PICKLE_BYTES) return undefined;
        return broken(err, ended ? 'the file ends inside its pickle' : `its pickle is larger than ${MAX_PICKLE_BYTES >> 20} MB`);
      }
      return broken(err, err.message);
    }
  }

  /** Walks the zip's first entry; true while more bytes are needed for it. */
  private readZip(bytes: Uint8Array, ended: boolean): boolean {
    if (this.zipHeadDone) return false;
    try {
      this.zipEntry = zipLocalEntry(bytes, 0);
      this.zipScan = scanZipHead(bytes);
    } catch (err) {
      if (!(err instanceof PickleError)) throw err;
      if (err instanceof PickleIncomplete && !ended && bytes.length <= MAX_PICKLE_BYTES) return true;
      this.zipError = err;
    }
    this.zipHeadDone = true;
    return false;
  }

  /** A legacy tar: every global its pickles name is judged; then whether torch would read it as walked. */
  private judgeTar(tar: LegacyTarWalk): PickleVerdict {
    const scan = tar.finish();
    const globals = disallowedGlobals(scan.globals);
    if (globals.length > 0) return { status: 'unsafe', globals };
    if (scan.problem) return { status: 'invalid', reason: `it is a legacy tar checkpoint (torch < 0.4): ${scan.problem}` };
    return { status: 'safe', scan: { format: 'tar', walks: scan.walks, end: scan.bytes } };
  }

  /** At the end: the central directory says which data.pkl torch loads; only the one walked may be it. */
  private judgeZip(): PickleVerdict {
    const invalid = (reason: string): PickleVerdict => ({ status: 'invalid', reason });
    const tail = this.tail?.bytes();
    if (!tail) return invalid('the file ended before its size');
    let directory;
    try {
      directory = readZipDirectory(tail.data, tail.start);
    } catch (err) {
      if (!(err instanceof ZipStructureError)) throw err;
      return this.checkpointName ? invalid(err.message) : { status: 'none' };
    }
    const first = directory.records[0]?.name ?? '';
    const archive = first.slice(0, Math.max(0, first.indexOf('/')));
    // torch refuses an archive without a top folder before it reads anything.
    if (!archive) return { status: 'none' };
    const holds = (name: string) => directory.records.some((r) => foldName(r.name) === foldName(`${archive}/${name}`));
    // torch.load tells a TorchScript archive by its list of records before it looks for data.pkl.
    const nul = nulNameProblem(directory.records);
    if (nul) return invalid(nul);
    // Before the archive's other rules: torch.jit.save compresses records, and this is the reason that matters.
    if (holds('constants.pkl')) return invalid('it is a TorchScript archive (constants.pkl), which torch.load hands to torch.jit.load; this check does not read those');
    // Without data.pkl, torch.load stops before it unpickles anything.
    if (!holds('data.pkl')) return { status: 'none' };
    let view;
    try {
      view = torchArchive(directory);
    } catch (err) {
      if (!(err instanceof ZipStructureError)) throw err;
      return invalid(err.message);
    }
    // A pickle that broke was not walked to its end: its length is not compared.
    const disagreement = dataPklDisagreement(view, this.zipEntry, this.zipScan?.end);
    if (disagreement) return invalid(disagreement);
    if (this.zipError) return broken(this.zipError, this.zipError instanceof PickleIncomplete ? 'its data.pkl is cut short' : this.zipError.message);
    const scan = this.zipScan!;
    return judged({ ...scan, archive: view.archive });
  }
}

/** A pickle verdict that keeps a file from its final name (or is kept only on request). */
export interface PickleJudgement {
  status: 'unsafe' | 'invalid';
  kept: boolean;
  diagnosis: Diagnosis;
}

export function judgePickle(name: string, verdict: PickleVerdict | undefined, allowUnsafe: boolean): PickleJudgement | undefined {
  if (verdict?.status === 'unsafe') return { status: 'unsafe', kept: allowUnsafe, diagnosis: unsafePickle(name, verdict.globals, allowUnsafe) };
  if (verdict?.status === 'invalid') return { status: 'invalid', kept: false, diagnosis: invalidPickle(name, verdict.reason) };
  return undefined;
}
