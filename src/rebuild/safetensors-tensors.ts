/**
 * Tensor values from a Hugging Face conversion saved as safetensors (one file, or shards with
 * `model.safetensors.index.json`): each file's header read once, then tensors read by name.
 */
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { invFreqBytes } from './inv-freq.js';
import { LocatedTensors, type Located } from './located-tensors.js';

const MAX_HEADER_BYTES = 100 << 20;


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

/** Every tensor's shape in the `*.safetensors` files of `dir`; undefined when it has none. */
export async function safetensorsShapes(dir: string): Promise<Map<string, number[]> | undefined> {
  const names = await safetensorsFiles(dir);
  if (names.length === 0) return undefined;
  const out = new Map<string, number[]>();
  for (const name of names) {
    const path = join(dir, name);
    const handle = await open(path, 'r');
    try {
      for (const [k, v] of await readHeader(path, handle)) out.set(k, v.shape);
    } finally {
      await handle.close();
    }
  }
  return out;
}

async function safetensorsFiles(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.safetensors')).sort();
}

/** Every `*.safetensors` file in `dir`, opened and located; `headDim` (dim / heads) for inv_freq. */
export async function openSafetensorsTensors(dir: string, headDim: number): Promise<LocatedTensors> {
  const names = await safetensorsFiles(dir);
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
    for (const h of handles.values()) await h.close().catch(() => undefined);
    throw err;
  }
  return new LocatedTensors(tensors, handles, invFreqBytes(headDim));
}
