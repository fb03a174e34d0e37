/**
 * Tensor values from torch zip checkpoints (`.bin` of any torch version, any sharding), read by name
 * at any offset: each file's central directory and data.pkl are read once (the pickle walked, never
 * run), then a tensor is one contiguous run of its storage's record. Views with strides are refused.
 */
import { InputError } from '../errors.js';
import { PickleError, walkPickle } from '../release/pickle.js';
import { elementCount, isContiguous, NotConvertible, stateDictTensors } from '../release/state-dict.js';
import { readZipDirectory, torchArchive, ZipStructureError } from '../release/zip-directory.js';
import { readFully, type Located } from './located-tensors.js';
import { locateLegacy } from './torch-legacy-tensors.js';
import { checkpointFormat } from '../release/checkpoint.js';
import { folderOf, type RandomFile, type SourceFolder } from './source-folder.js';

const TAIL_BYTES = 4 << 20;
/** Enough of the start to tell a zip from the legacy format's magic number. */
const checkpointHeadBytes = 16;
const MAX_PICKLE_BYTES = 256 << 20;

async function readAt(handle: RandomFile, at: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  return buf.subarray(0, await readFully(handle, buf, at));
}

/** Every tensor of one torch zip checkpoint, located in the file. */
export async function locateTensors(path: string, handle: RandomFile): Promise<Map<string, Located>> {
  const size = (await handle.stat()).size;
  const tailStart = Math.max(0, size - TAIL_BYTES);
  const fail = (why: string): never => {
    throw new InputError(`cannot be read as a torch checkpoint: ${why}`, { file: path, hint: 'use LLaMA weights saved by torch.save, or as safetensors' });
  };
  let view;
  try {
    view = torchArchive(readZipDirectory(await readAt(handle, tailStart, size - tailStart), tailStart));
  } catch (err) {
    if (err instanceof ZipStructureError) fail(err.message);
    throw err;
  }
  const dataStart = async (localOffset: number) => {
    const head = await readAt(handle, localOffset, 30);
    return localOffset + 30 + head.readUInt16LE(26) + head.readUInt16LE(28);
  };
  const pkl = view.record('data.pkl') ?? fail('it has no data.pkl');
  if (pkl.size > MAX_PICKLE_BYTES) fail('its data.pkl is too large');
  let tensors;
  try {
    tensors = stateDictTensors(walkPickle(await readAt(handle, await dataStart(pkl.localOffset), pkl.size)).root);
  } catch (err) {
    if (err instanceof NotConvertible || err instanceof PickleError) fail(err.message);
    throw err;
  }
  const out = new Map<string, Located>();
  for (const t of tensors) {
    if (!isContiguous(t)) fail(`tensor "${t.name}" is a view with strides`);
    const rec = view.record(`data/${t.storageKey}`) ?? fail(`storage ${t.storageKey} is missing`);
    const bytes = elementCount(t.shape) * t.elementBytes;
    if (t.offset * t.elementBytes + bytes > rec.size) fail(`tensor "${t.name}" reaches past its storage`);
    out.set(t.name, { file: path, dtype: t.dtype, shape: t.shape, at: (await dataStart(rec.localOffset)) + t.offset * t.elementBytes, bytes });
  }
  return out;
}

/** Every tensor of a torch checkpoint of either format: a zip, or the legacy pickles. */
export async function locateTorch(path: string, handle: RandomFile): Promise<Map<string, Located>> {
  const head = Buffer.alloc(checkpointHeadBytes);
  const n = await readFully(handle, head, 0);
  const format = checkpointFormat(head.subarray(0, n));
  if (format === 'zip') return locateTensors(path, handle);
  if (format === 'legacy') return locateLegacy(path, handle);
  throw new InputError('is neither a torch zip checkpoint nor one of the legacy format', { file: path, hint: 'use LLaMA weights saved by torch.save, or as safetensors' });
}

/** The `.bin` files of a folder. */
export async function binFiles(dir: string | SourceFolder): Promise<string[]> {
  return (await folderOf(dir).names()).filter((n) => n.endsWith('.bin')).sort();
}
