/**
 * Tensor values from a Hugging Face conversion saved as safetensors (one file, or shards with
 * `model.safetensors.index.json`): each file's header read once, then tensors read by name.
 */
import { InputError } from '../errors.js';
import type { Located } from './located-tensors.js';
import { folderOf, type RandomFile, type SourceFolder } from './source-folder.js';

const MAX_HEADER_BYTES = 100 << 20;

/** Every tensor of one safetensors file, from its header. */
export async function locateSafetensors(path: string, handle: RandomFile): Promise<Map<string, Located>> {
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
    const counts = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
    if (typeof t.dtype !== 'string' || !counts(t.shape) || !counts(offsets) || offsets.length !== 2 || offsets[1]! < offsets[0]!) {
      throw new InputError(`has a malformed entry for "${name}"`, { file: path });
    }
    out.set(name, { file: path, dtype: t.dtype, shape: t.shape as number[], at: 8 + length + offsets[0], bytes: offsets[1] - offsets[0] });
  }
  return out;
}

/** The `*.safetensors` files of a folder. */
export async function safetensorsFiles(dir: string | SourceFolder): Promise<string[]> {
  return (await folderOf(dir).names()).filter((n) => n.endsWith('.safetensors')).sort();
}
