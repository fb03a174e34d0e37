/**
 * Tensor values from a Hugging Face conversion saved as safetensors (one file, or shards with
 * `model.safetensors.index.json`), read by name at any offset. Newer conversions leave out
 * `rotary_emb.inv_freq`: those values are computed as the 2023 conversion stored them. A tensor
 * whose dtype or shape differs from the 2023 layout's cannot give its bytes (a bf16 re-save lost
 * the fp16 bits): that is said, naming the tensor and the file.
 */
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { invFreqBytes } from './inv-freq.js';
import { byteSize, type TensorShape } from './llama-shapes.js';
import type { TensorReader } from './rebuilt-shard.js';

const MAX_HEADER_BYTES = 100 << 20;

interface Located {
  file: string;
  dtype: string;
  shape: number[];
  /** Absolute offset of the tensor's first byte in its file. */
  at: number;
  bytes: number;
}

async function readHeader(path: string, handle: FileHandle): Promise<Map<string, Located>> {
  const head = Buffer.alloc(8);
  await handle.read(head, 0, 8, 0);
  const length = Number(head.readBigUInt64LE(0));
  if (length > MAX_HEADER_BYTES) throw new InputError('is not a safetensors file (its header length is too large)', { file: path });
  const json = Buffer.alloc(length);
  await handle.read(json, 0, length, 8);
  let doc: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
  try {
    doc = JSON.parse(json.toString('utf8'));
  } catch {
    throw new InputError('is not a safetensors file (its header is not JSON)', { file: path });
  }
  const out = new Map<string, Located>();
  for (const [name, t] of Object.entries(doc)) {
    if (name === '__metadata__') continue;
    const offsets = t.data_offsets as [number, number] | undefined;
    if (typeof t.dtype !== 'string' || !Array.isArray(t.shape) || !Array.isArray(offsets)) throw new InputError(`has a malformed entry for "${name}"`, { file: path });
    out.set(name, { file: path, dtype: t.dtype, shape: t.shape as number[], at: 8 + length + offsets[0], bytes: offsets[1] - offsets[0] });
  }
  return out;
}

export class SafetensorsTensors implements TensorReader {
  private constructor(
    private readonly tensors: Map<string, Located>,
    private readonly handles: Map<string, FileHandle>,
    /** The recipe's inv_freq, for a source that left it out. */
    private readonly invFreq: Buffer,
  ) {}

  /** Every `*.safetensors` file in `dir`; `headDim`: the model's (dim / heads), for inv_freq. */
  static async open(dir: string, headDim: number): Promise<SafetensorsTensors> {
    const names = (await readdir(dir)).filter((n) => n.endsWith('.safetensors')).sort();
    if (names.length === 0) throw new InputError('holds no .safetensors file', { file: dir });
    const tensors = new Map<string, Located>();
    const handles = new Map<string, FileHandle>();
    try {
      for (const name of names) {
        const path = join(dir, name);
        const handle = await open(path, 'r');
        handles.set(path, handle);
        for (const [k, v] of await readHeader(path, handle)) tensors.set(k, v);
      }
    } catch (err) {
      for (const h of handles.values()) await h.close();
      throw err;
    }
    return new SafetensorsTensors(tensors, handles, invFreqBytes(headDim));
  }

  /** Says, before any byte is read, why a tensor of the 2023 layout cannot come from here. */
  check(wanted: readonly TensorShape[]): void {
    for (const t of wanted) {
      const found = this.tensors.get(t.name);
      if (!found) {
        if (t.name.endsWith('.rotary_emb.inv_freq')) continue;
        throw new InputError(`has no tensor "${t.name}", which the base needs`, { hint: 'point the base at a complete LLaMA conversion of the same size' });
      }
      if (found.dtype !== t.dtype || found.shape.join() !== t.shape.join() || found.bytes !== byteSize(t)) {
        throw new InputError(`holds "${t.name}" as ${found.dtype} ${JSON.stringify(found.shape)}, where the base needs ${t.dtype} ${JSON.stringify(t.shape)}`, {
          file: found.file,
          hint: found.dtype === 'BF16' ? 'a bf16 copy has lost the fp16 bits: use Meta\'s original files or an fp16 conversion' : 'point the base at a LLaMA conversion of the size the release was made from',
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
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handles.get(found.file)!.read(buf, done, length - done, found.at + offset + done);
      if (bytesRead === 0) throw new InputError(`ends inside tensor "${name}"`, { file: found.file });
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    for (const h of this.handles.values()) await h.close().catch(() => undefined);
  }
}
