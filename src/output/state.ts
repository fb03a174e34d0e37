/**
 * Resume state: what this tool wrote and verified in an output folder, so a rerun (after success,
 * Ctrl-C or kill -9) skips finished files without hashing them again. An entry counts only while
 * the output and its inputs are exactly as they were (size, modification time, inode); any change
 * and the file is checked or decoded again.
 */
import { randomBytes } from 'node:crypto';
import { stat, unlink, writeFile } from 'node:fs/promises';
import { readInput } from '../input-files.js';
import { asWriteError } from '../errors.js';
import { basename, join } from 'node:path';
import type { Digests } from '../types.js';
import { renameWithRetry, stateDir } from './temp-file.js';

/** Far more than the state of any release (a few hundred bytes a file); a larger one is not ours. */
const MAX_STATE_BYTES = 64 << 20;

export interface FileIdentity {
  size: number;
  mtimeNs: string;
  ino: string;
}

export interface StateEntry {
  output: FileIdentity;
  payload: FileIdentity;
  base: FileIdentity | null;
  digests: Digests;
}

/**
 * A file interrupted while being decoded from the Hub: its temporary output holds `bytes` whole,
 * flushed bytes decoded from exactly this payload and this base.
 */
export interface PartialEntry {
  /** `sha256:<hex>` for a Hub payload (its listed SHA-256), `file:<size>:<mtime>:<inode>` for a local one. */
  payload: string;
  payloadSize: number;
  base: FileIdentity | null;
  /** The temporary output's name in the partial folder, and its inode (a replaced file is not ours). */
  temp: { name: string; ino: string };
  bytes: number;
  /** false: the payload cannot be resumed inside (gzip); the next run restarts it and says so. */
  resumable: boolean;
}

/**
 * A GGUF an interrupted decode --gguf kept to resume: the shards whose parts of it are whole and
 * flushed, each part vouched for by its CRC-32 (checked again before it is used).
 */
export interface GgufEntry {
  /** The SHA-256 of the GGUF's layout (header, types, regions): a run that would lay it out otherwise starts it again. */
  layout: string;
  /** The temporary GGUF's name in the partial folder, and its inode (a replaced file is not ours). */
  temp: { name: string; ino: string };
  shards: Record<string, GgufShardEntry>;
}

export interface GgufShardEntry {
  /** The digests of the decoded shard, which matched its published one, and its size. */
  digests: Digests;
  bytes: number;
  /** Its tensors in the order they were placed, with their offsets in the file, and the CRC-32 of each one's bytes there. */
  placed: [string, number, number][];
}

interface StateFile {
  version: 1;
  files: Record<string, StateEntry>;
  /** Absent in states written before resuming inside a file existed. */
  partial?: Record<string, PartialEntry>;
  /**
   * Every output this tool put under a final name here, kept when its entry is dropped: --force
   * replaces only these (absent in older states, whose `files` then say the same).
   */
  written?: string[];
  gguf?: GgufEntry;
}

export async function identify(path: string): Promise<FileIdentity | undefined> {
  // A Hub file at a commit never changes: its address (which names the commit) is its identity.
  if (path.startsWith('hf://')) return { size: -1, mtimeNs: '0', ino: path };
  try {
    const s = await stat(path, { bigint: true });
    return { size: Number(s.size), mtimeNs: s.mtimeNs.toString(), ino: s.ino.toString() };
  } catch {
    return undefined;
  }
}

function same(a: FileIdentity | null | undefined, b: FileIdentity | null | undefined): boolean {
  if (!a || !b) return a === b || (!a && !b);
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino;
}

export class ResumeState {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly data: StateFile,
  ) {}

  static async load(outputDir: string): Promise<ResumeState> {
    const path = join(stateDir(outputDir), 'state.json');
    let data: StateFile = { version: 1, files: {} };
    try {
      const parsed = JSON.parse((await readInput(path, MAX_STATE_BYTES)).bytes.toString('utf8')) as StateFile;
      if (parsed.version === 1 && parsed.files && typeof parsed.files === 'object') data = parsed;
    } catch {
      // Missing or damaged state only costs a re-check of the outputs.
    }
    return new ResumeState(path, data);
  }

  /** The recorded entry, if output and inputs are unchanged since it was written. */
  async unchanged(name: string, paths: { output: string; payload: string; base: string | undefined }): Promise<StateEntry | undefined> {
    const entry = this.data.files[name];
    if (!entry) return undefined;
    const [output, payload, base] = await Promise.all([
      identify(paths.output),
      identify(paths.payload),
      paths.base ? identify(paths.base) : Promise.resolve(undefined),
    ]);
    if (!same(output, entry.output) || !same(payload, entry.payload) || !same(base ?? null, entry.base)) return undefined;
    return entry;
  }

  async record(name: string, paths: { output: string; payload: string; base: string | undefined }, digests: Digests): Promise<void> {
    const [output, payload, base] = await Promise.all([
      identify(paths.output),
      identify(paths.payload),
      paths.base ? identify(paths.base) : Promise.resolve(undefined),
    ]);
    if (!output || !payload) return;
    this.data.files[name] = { output, payload, base: base ?? null, digests };
    const written = (this.data.written ??= []);
    if (!written.includes(name)) written.push(name);
    await this.save();
  }

  /** Whether this tool wrote the output `name` in this folder (the only outputs --force replaces). */
  wrote(name: string): boolean {
    return name in this.data.files || (this.data.written?.includes(name) ?? false);
  }

  forget(name: string): void {
    delete this.data.files[name];
  }

  /** Temporary outputs an interrupted run kept to resume: not stale. */
  keptTemps(): Set<string> {
    const names = new Set(Object.values(this.data.partial ?? {}).map((p) => p.temp.name));
    const gguf = this.ggufEntry();
    if (gguf) names.add(gguf.temp.name);
    return names;
  }

  /** The kept GGUF's entry; none for one that is damaged, or names a file outside the partial folder. */
  ggufEntry(): GgufEntry | undefined {
    const g = this.data.gguf;
    const placedOk = (p: unknown) => Array.isArray(p) && p.every((t) => Array.isArray(t) && typeof t[0] === 'string' && Number.isSafeInteger(t[1]) && Number.isInteger(t[2]));
    const shardOk = (e: GgufShardEntry) => e && typeof e.digests === 'object' && Number.isSafeInteger(e.bytes) && placedOk(e.placed);
    const ok =
      g &&
      typeof g.layout === 'string' &&
      typeof g.temp?.name === 'string' &&
      typeof g.temp.ino === 'string' &&
      basename(g.temp.name) === g.temp.name &&
      !g.temp.name.startsWith('.') &&
      typeof g.shards === 'object' &&
      g.shards !== null &&
      Object.values(g.shards).every(shardOk);
    return ok ? g : undefined;
  }

  async recordGguf(entry: GgufEntry): Promise<void> {
    this.data.gguf = entry;
    await this.save();
  }

  async forgetGguf(): Promise<void> {
    if (!this.data.gguf) return;
    delete this.data.gguf;
    await this.save();
  }

  partialOf(name: string): PartialEntry | undefined {
    return this.data.partial?.[name];
  }

  /** The partial entry, if it can be resumed for these inputs: same payload (by content), same base, same temporary name. */
  async resumablePartial(name: string, want: { payload: string; payloadSize: number; base: string | undefined; tempName: string }): Promise<PartialEntry | undefined> {
    const p = this.partialOf(name);
    if (!p?.resumable || p.payload !== want.payload || p.payloadSize !== want.payloadSize || p.temp.name !== want.tempName) return undefined;
    const base = want.base ? await identify(want.base) : undefined;
    return same(base ?? null, p.base) ? p : undefined;
  }

  async recordPartial(name: string, entry: PartialEntry): Promise<void> {
    (this.data.partial ??= {})[name] = entry;
    await this.save();
  }

  /** Drops a file's partial record, saved with the next write of the state (or now, with `save`); whether there was one. */
  async forgetPartial(name: string, options: { save?: boolean } = {}): Promise<boolean> {
    if (!this.data.partial?.[name]) return false;
    delete this.data.partial[name];
    if (options.save) await this.save();
    return true;
  }

  /**
   * Writes are serialised and atomic (temp + rename): a crash leaves the old or the new state. The
   * temporary name is unique and created exclusively, so nothing planted there is written through.
   */
  save(): Promise<void> {
    const text = `${JSON.stringify(this.data)}\n`;
    this.writing = this.writing.then(async () => {
      const temp = `${this.path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(temp, text, { flag: 'wx', mode: 0o644 });
        await renameWithRetry(temp, this.path);
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        throw asWriteError(err, this.path, 'saving the resume state');
      }
    });
    return this.writing;
  }
}
