/**
 * Tensor values from a Hugging Face conversion saved as safetensors (one file, or shards with
 * `model.safetensors.index.json`): each file's header read once, then tensors read by name.
 */
import { isUtf8 } from 'node:buffer';
import { InputError } from '../errors.js';
import { MAX_SAFETENSORS_HEADER, safetensorsLayout, SafetensorsLayoutError, type SafetensorsTensor } from '../release/safetensors-layout.js';
import { readFully, type Located } from './located-tensors.js';
import { folderOf, type RandomFile, type SourceFolder } from './source-folder.js';

/**
 * Every tensor of one safetensors file, from its header, held to the file as the safetensors library
 * holds it: a tensor whose bytes overlap another's, or a header that leaves bytes unclaimed, is
 * refused here rather than read one way by torch and another by this tool.
 */
export async function locateSafetensors(path: string, handle: RandomFile): Promise<Map<string, Located>> {
  const refuse = (why: string): never => {
    throw new InputError(`is not a safetensors file that torch would load (${why})`, { file: path, hint: 'download or convert it again' });
  };
  const { size } = await handle.stat();
  const head = Buffer.alloc(8);
  if (size < 8 || (await readFully(handle, head, 0)) < 8) refuse('it is shorter than its 8-byte header length');
  const length = head.readBigUInt64LE(0);
  if (length > BigInt(MAX_SAFETENSORS_HEADER)) refuse('its header length is too large');
  if (8 + Number(length) > size) refuse('its header runs past the end of the file');
  const json = Buffer.alloc(Number(length));
  if ((await readFully(handle, json, 8)) < json.length) refuse('its header runs past the end of the file');
  if (!isUtf8(json)) refuse('its header is not UTF-8');
  let tensors: SafetensorsTensor[] = [];
  try {
    tensors = safetensorsLayout(json.toString('utf8'), size - 8 - json.length);
  } catch (err) {
    if (!(err instanceof SafetensorsLayoutError)) throw err;
    refuse(err.message);
  }
  const out = new Map<string, Located>();
  for (const t of tensors) out.set(t.name, { file: path, dtype: t.dtype, shape: t.shape, at: 8 + json.length + t.begin, bytes: t.end - t.begin });
  return out;
}

/** The `*.safetensors` files of a folder. */
export async function safetensorsFiles(dir: string | SourceFolder): Promise<string[]> {
  return (await folderOf(dir).names()).filter((n) => n.endsWith('.safetensors')).sort();
}
