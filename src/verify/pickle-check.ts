/**
 * The pickle check on a file's bytes as they stream by: the first bytes are collected (only until
 * the pickles at the start are walked) and judged against torch's weights-only allowlist. It costs
 * no extra pass: data.pkl (zip) and the legacy pickles sit at the start of the file.
 */
import { checkpointFormat, scanCheckpoint, unsafeGlobals, ZipHeaderIncomplete, type CheckpointFormat, type CheckpointScan } from '../release/checkpoint.js';
import { PickleError, PickleIncomplete } from '../release/pickle.js';
import type { Diagnosis } from '../types.js';
import { invalidPickle, unsafePickle } from './diagnosis-text.js';

export type PickleVerdict =
  /** Not a pickle-based checkpoint: nothing torch.load would unpickle. */
  | { status: 'none' }
  | { status: 'safe'; scan: CheckpointScan }
  /** `globals`: each global outside the allowlist, with what applied it. */
  | { status: 'unsafe'; globals: string[]; scan: CheckpointScan }
  | { status: 'invalid'; reason: string };

/** Pickles larger than this are not state dicts (a 30B shard's data.pkl is well under a megabyte). */
const MAX_PICKLE_BYTES = 256 << 20;

/** Names torch.load is pointed at; a file that merely starts like a pickle is judged only under one. */
const PICKLE_NAME = /\.(bin|pt|pth|ckpt|pkl|pickle)$/i;

export class PickleCheck {
  private format: CheckpointFormat | null | undefined;

  /** `name`: the file's name (a plain pickle is judged only under a checkpoint's name). */
  constructor(private readonly name: string) {}
  private held: Buffer = Buffer.alloc(0);
  private decided: PickleVerdict | undefined;

  /** Feeds the file's next bytes (the caller may reuse its buffer: what is still needed is copied). */
  feed(chunk: Uint8Array): void {
    if (this.decided) return;
    if (this.format === undefined) {
      this.format = checkpointFormat(chunk) ?? null;
      if (this.format === 'pickle' && !PICKLE_NAME.test(this.name)) this.format = null;
      if (this.format === null) {
        this.decided = { status: 'none' };
        return;
      }
    }
    // Judged where it lies (a verdict keeps no bytes), and copied only while the pickles go on past
    // it: a kept copy of an 8 MiB first chunk put a Hub decode with --safetensors over 150 MB.
    if (this.held.length > 0) this.held = Buffer.concat([this.held, chunk]);
    const bytes = this.held.length > 0 ? this.held : chunk;
    this.decided = this.judge(bytes, false);
    if (this.decided) this.held = Buffer.alloc(0);
    else if (bytes === chunk) this.held = Buffer.from(chunk);
  }

  /** The verdict once the whole file went by. */
  finish(): PickleVerdict {
    return this.decided ?? (this.format ? this.judge(this.held, true) : undefined) ?? { status: 'none' };
  }

  private judge(bytes: Uint8Array, ended: boolean): PickleVerdict | undefined {
    const format = this.format!;
    try {
      const scan = scanCheckpoint(bytes, format);
      if (!scan) return { status: 'none' };
      const globals = unsafeGlobals(scan);
      return globals.length > 0 ? { status: 'unsafe', globals, scan } : { status: 'safe', scan };
    } catch (err) {
      if (!(err instanceof PickleError)) throw err;
      // A file that merely starts like a pickle and is not one was never going to run anything.
      if (format === 'pickle' && !(err instanceof PickleIncomplete)) return { status: 'none' };
      if (err instanceof PickleIncomplete) {
        if (!ended && bytes.length <= MAX_PICKLE_BYTES) return undefined;
        // A file that ends inside a zip header, or inside something that merely starts like a pickle, was no checkpoint.
        if (format === 'pickle' || err instanceof ZipHeaderIncomplete) return { status: 'none' };
        return { status: 'invalid', reason: ended ? 'the file ends inside its pickle' : `its pickle is larger than ${MAX_PICKLE_BYTES >> 20} MB` };
      }
      return { status: 'invalid', reason: err.message };
    }
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
