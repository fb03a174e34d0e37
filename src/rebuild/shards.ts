/**
 * How save_pretrained (transformers d04ec99b) cut a state dict into files: `shard_checkpoint` with
 * max_shard_size "10GB" = 10 * 10**9 bytes, a new file whenever the next tensor would tip the current
 * one over, named `pytorch_model-{k:05d}-of-{N:05d}.bin`; and the index it writes beside them.
 */
import { byteSize, type TensorShape } from './llama-shapes.js';

export const MAX_SHARD_BYTES = 10 * 10 ** 9;

export interface Shard<T extends TensorShape = TensorShape> {
  file: string;
  tensors: T[];
}

export function shardStateDict<T extends TensorShape>(tensors: readonly T[], maxBytes = MAX_SHARD_BYTES): Shard<T>[] {
  const blocks: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const t of tensors) {
    const bytes = byteSize(t);
    if (size + bytes > maxBytes) {
      blocks.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += bytes;
  }
  blocks.push(current);
  if (blocks.length === 1) return [{ file: 'pytorch_model.bin', tensors: blocks[0]! }];
  const n = String(blocks.length).padStart(5, '0');
  return blocks.map((tensors, i) => ({ file: `pytorch_model-${String(i + 1).padStart(5, '0')}-of-${n}.bin`, tensors }));
}

/** `pytorch_model.bin.index.json` as `json.dumps(index, indent=2, sort_keys=True) + "\n"` writes it. */
export function shardIndexJson(shards: readonly Shard[]): string {
  const total = shards.reduce((n, s) => n + s.tensors.reduce((m, t) => m + byteSize(t), 0), 0);
  const map: [string, string][] = shards.flatMap((s) => s.tensors.map((t) => [t.name, s.file] as [string, string]));
  map.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const weightMap = map.map(([name, file]) => `    ${JSON.stringify(name)}: ${JSON.stringify(file)}`).join(',\n');
  return `{\n  "metadata": {\n    "total_size": ${total}\n  },\n  "weight_map": {\n${weightMap}\n  }\n}\n`;
}
