/**
 * Tensor values from a checkpoint in torch's legacy format (torch.save before 1.6, or with
 * `_use_new_zipfile_serialization=False`): five pickles from byte 0 (magic number, protocol,
 * system info, the state dict, the storage keys), then each storage in key order as an int64
 * element count and its raw bytes. The pickles are walked, never run; the storages are found by
 * their counts, one 8-byte read each.
 */
import { InputError } from '../errors.js';
import { scanPickles } from '../release/checkpoint.js';
import { PickleError, PickleIncomplete } from '../release/pickle.js';
import { elementCount, isContiguous, NotConvertible, stateDictTensors, type TensorLayout } from '../release/state-dict.js';
import { readFully, type Located } from './located-tensors.js';
import type { RandomFile } from './source-folder.js';

/** The pickles of a 30B shard are well under a megabyte; the reads grow to this. */
const MAX_PICKLES_BYTES = 256 << 20;

export async function locateLegacy(path: string, handle: RandomFile): Promise<Map<string, Located>> {
  const size = (await handle.stat()).size;
  const fail = (why: string): never => {
    throw new InputError(`cannot be read as a legacy torch checkpoint: ${why}`, { file: path, hint: 'use LLaMA weights saved by torch.save, or as safetensors' });
  };
  let scan;
  for (let want = 1 << 20; ; want *= 4) {
    const head = Buffer.alloc(Math.min(size, want, MAX_PICKLES_BYTES));
    await readFully(handle, head, 0);
    try {
      scan = scanPickles(head);
      break;
    } catch (err) {
      if (!(err instanceof PickleError)) throw err;
      if (!(err instanceof PickleIncomplete) || head.length === size || head.length === MAX_PICKLES_BYTES) fail(err.message);
    }
  }
  const [, , , state, keys] = scan.walks;
  const keyList = keys?.root.t === 'list' ? keys.root.items : undefined;
  if (!state || !keyList) return fail('it does not hold the five pickles of the format');
  let tensors: TensorLayout[];
  try {
    tensors = stateDictTensors(state.root);
  } catch (err) {
    if (err instanceof NotConvertible) fail(err.message);
    throw err;
  }
  const byKey = new Map(tensors.map((t) => [t.storageKey, t]));
  const storageAt = new Map<string, number>();
  let at = scan.end;
  const count = Buffer.alloc(8);
  for (const key of keyList) {
    const k = key.t === 'str' ? key.v : fail('a storage key is not a string');
    const t = byKey.get(k) ?? fail(`storage ${k} belongs to no tensor`);
    if ((await readFully(handle, count, at)) < 8) fail(`it ends before storage ${k}`);
    const numel = Number(count.readBigInt64LE(0));
    if (numel !== t.storageNumel) fail(`storage ${k} holds ${numel} elements where data.pkl says ${t.storageNumel}`);
    storageAt.set(k, at + 8);
    at += 8 + numel * t.elementBytes;
  }
  if (at > size) fail('it ends inside its storages');
  const out = new Map<string, Located>();
  for (const t of tensors) {
    if (!isContiguous(t)) fail(`tensor "${t.name}" is a view with strides`);
    const start = storageAt.get(t.storageKey) ?? fail(`storage ${t.storageKey} is missing`);
    const bytes = elementCount(t.shape) * t.elementBytes;
    if (t.offset + elementCount(t.shape) > t.storageNumel) fail(`tensor "${t.name}" reaches past its storage`);
    out.set(t.name, { file: path, dtype: t.dtype, shape: t.shape, at: start + t.offset * t.elementBytes, bytes });
  }
  return out;
}
