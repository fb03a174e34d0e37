/**
 * Tensors found in open files (torch zips or safetensors), each one contiguous run of bytes, read by
 * name at any offset for a rebuilt base. `check` says before any byte is read why a tensor of the
 * 2023 layout cannot come from them (missing, another dtype or shape: a bf16 re-save lost the fp16
 * bits). inv_freq, which newer converters leave out, is the recipe's value.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { TensorDtype, TensorShape } from './llama-shapes.js';
import type { TensorReader } from './rebuilt-shard.js';

export interface Located {
  file: string;
  dtype: string;
  shape: number[];
  /** Absolute offset of the tensor's first byte in its file. */
  at: number;
  bytes: number;
}

export class LocatedTensors implements TensorReader {
  constructor(
    private readonly tensors: Map<string, Located>,
    private readonly handles: Map<string, FileHandle>,
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
          hint: found.dtype === 'BF16' ? "a bf16 copy has lost the fp16 bits: use Meta's original files or an fp16 conversion" : 'point the base at a LLaMA conversion of the size the release was made from',
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
export async function readFully(handle: FileHandle, buf: Buffer, at: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, at + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** Finds every tensor of one open file. */
export type Locate = (path: string, handle: FileHandle) => Promise<Map<string, Located>>;

/** Opens `files` of `dir` and locates their tensors; inv_freq, where absent, is `invFreq`. */
export async function openLocated(dir: string, files: readonly string[], locate: Locate, invFreq: Buffer): Promise<LocatedTensors> {
  const handles = new Map<string, FileHandle>();
  const tensors = new Map<string, Located>();
  try {
    for (const name of files) {
      const path = join(dir, name);
      const handle = await open(path, 'r');
      handles.set(path, handle);
      for (const [k, v] of await locate(path, handle)) tensors.set(k, v);
    }
  } catch (err) {
    for (const h of handles.values()) await h.close().catch(() => undefined);
    throw err;
  }
  return new LocatedTensors(tensors, handles, invFreq);
}

/** Every tensor's shape in `files` of `dir`, each file opened and closed again. */
export async function locatedShapes(dir: string, files: readonly string[], locate: Locate): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const name of files) {
    const path = join(dir, name);
    const handle = await open(path, 'r');
    try {
      for (const [k, v] of await locate(path, handle)) out.set(k, v.shape);
    } finally {
      await handle.close();
    }
  }
  return out;
}
