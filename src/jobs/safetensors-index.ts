/**
 * pytorch_model.bin.index.json -> model.safetensors.index.json: the same weight map pointing at the
 * safetensors shards, and the same metadata (total_size). Rewritten in the temporary file, after the
 * index itself was verified against its published digest.
 */
import { InputError } from '../errors.js';
import { readInput } from '../input-files.js';
import type { TempFile } from '../output/temp-file.js';
import { safetensorsName } from '../plan/output-names.js';

/** An index is a few hundred kB; anything larger is not one. */
const MAX_INDEX_BYTES = 64 << 20;

export async function rewriteIndexForSafetensors(temp: TempFile): Promise<void> {
  const { bytes } = await readInput(temp.tempPath, MAX_INDEX_BYTES);
  let index: { metadata?: Record<string, unknown>; weight_map?: Record<string, string> };
  try {
    index = JSON.parse(bytes.toString('utf8')) as typeof index;
  } catch {
    throw new InputError('is not a JSON shard index', { file: temp.path, hint: 'decode without --safetensors' });
  }
  if (!index.weight_map || typeof index.weight_map !== 'object') {
    throw new InputError('has no weight_map', { file: temp.path, hint: 'decode without --safetensors' });
  }
  const weightMap = Object.fromEntries(Object.entries(index.weight_map).map(([tensor, shard]) => [tensor, safetensorsName(shard)?.name ?? shard]));
  const text = Buffer.from(`${JSON.stringify({ ...index, metadata: index.metadata ?? {}, weight_map: weightMap }, null, 2)}\n`);
  await temp.handle.truncate(0);
  await temp.writeBuffered(text, text.length, 0);
}
