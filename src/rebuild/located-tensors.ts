/**
 * Tensors found in open files (torch zips or safetensors), each one contiguous run of bytes, read by
 * name at any offset for a rebuilt base. `check` says before any byte is read why a tensor of the
 * 2023 layout cannot come from them (missing, another dtype or shape: a bf16 re-save lost the fp16
 * bits). inv_freq, which newer converters leave out, is the recipe's value.
 */
import { InputError } from '../errors.js';
import type { TensorDtype, TensorShape } from './llama-shapes.js';
import type { TensorReader } from './rebuilt-shard.js';
import { folderOf, type RandomFile, type SourceFolder } from './source-folder.js';

export interface Located {
  file: string;
  dtype: string;
  shape: number[];
  /** Absolute offset of the tensor's first byte in its file. */
  at: number;
  bytes: number;
}

/** Why a bf16 conversion cannot give the base, and what can. */
export const BF16_HINT = "a bf16 copy has lost Meta's fp16 bits (transformers 4.33 and later re-save through bf16): use Meta's original files, or a conversion made in fp16 before transformers 4.33";

export class LocatedTensors implements TensorReader {
  constructor(
    private readonly tensors: Map<string, Located>,
    private readonly handles: Map<string, RandomFile>,
    private readonly invFreq: Buffer,
  ) {}

  /** Says, before any byte is read, why a tensor of the 2023 layout cannot come from here. */
  check(wanted: readonly TensorShape[]): void {
    for (const t of wanted) {
      const found = this.tensors.get(t.name);
      if (!found) {
        if (t.name.endsWith('.rotary_emb.inv_freq')) continue;
        throw new InputError(`has no tensor "${t.name}", which the base needs`, { hint: 'point the base at a complete LLaMA conversion of the same size' });
      }
      if (found.dtype !== (t.dtype satisfies TensorDtype) || found.shape.join() !== t.shape.join()) {
        throw new InputError(`holds "${t.name}" as ${found.dtype} ${JSON.stringify(found.shape)}, where the base needs ${t.dtype} ${JSON.stringify(t.shape)}`, {
          file: found.file,
          hint: found.dtype === 'BF16' ? BF16_HINT : 'point the base at a LLaMA conversion of the size the release was made from',
        });
      }
    }
  }

  async read(name: string, offset: number, buf: Buffer, length: number): Promise<void> {
    const found = this.tensors.get(name);
    if (!found) {
      // Left out by newer converters; its value is the recipe's.
      this.invFreq.copy(buf, 0, offset, offset + length);
      return;
    }
    await this.readLocated(found, offset, buf, length);
  }

  /** The tensors' names, in the order their files hold them. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  get(name: string): Located | undefined {
    return this.tensors.get(name);
  }

  /** Bytes [offset, offset + length) of a tensor found here, into buf[0, length). */
  async readLocated(t: Located, offset: number, buf: Buffer, length: number): Promise<void> {
    const done = await readFully(this.handles.get(t.file)!, buf.subarray(0, length), t.at + offset);
    if (done < length) throw new InputError(`ends inside a tensor at byte ${t.at + offset + done}`, { file: t.file });
  }

  async close(): Promise<void> {
    for (const h of this.handles.values()) await h.close().catch(() => undefined);
  }
}

/** Fills `buf` from `at` on, as far as the file goes; the bytes read. */
export async function readFully(handle: RandomFile, buf: Buffer, at: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, at + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** Finds every tensor of one open file. */
export type Locate = (path: string, handle: RandomFile) => Promise<Map<string, Located>>;

/** A tensor found twice: the folder holds two conversions (or two shardings) at once. */
function addOnce(into: Map<string, Located>, found: Map<string, Located>): void {
  for (const [name, t] of found) {
    const before = into.get(name);
    if (before) {
      throw new InputError(`holds "${name}" twice, in ${before.file} and in ${t.file}: the folder mixes two conversions`, {
        file: t.file,
        hint: 'keep one conversion (one set of shards) in the folder',
      });
    }
    into.set(name, t);
  }
}

/** Opens `files` of a folder and locates their tensors; inv_freq, where absent, is `invFreq`. */
export async function openLocated(dir: string | SourceFolder, files: readonly string[], locate: Locate, invFreq: Buffer): Promise<LocatedTensors> {
  const folder = folderOf(dir);
  const handles = new Map<string, RandomFile>();
  const tensors = new Map<string, Located>();
  try {
    for (const name of files) {
      const path = folder.pathOf(name);
      const handle = await folder.open(name);
      handles.set(path, handle);
      addOnce(tensors, await locate(path, handle));
    }
  } catch (err) {
    for (const h of handles.values()) await h.close().catch(() => undefined);
    throw err;
  }
  return new LocatedTensors(tensors, handles, invFreq);
}

/** Every tensor found in `files` of a folder, each file opened and closed again. */
export async function locatedShapes(dir: string | SourceFolder, files: readonly string[], locate: Locate): Promise<Map<string, Located>> {
  const folder = folderOf(dir);
  const found = new Map<string, Located>();
  for (const name of files) {
    const handle = await folder.open(name);
    try {
      addOnce(found, await locate(folder.pathOf(name), handle));
    } finally {
      await handle.close();
    }
  }
  return found;
}
