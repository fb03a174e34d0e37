/**
 * decode --gguf: the GGUF a decode writes instead of the checkpoint shards. It is set up once the
 * release's small files are decoded (config.json and tokenizer.model give its metadata, the index
 * which shard holds which tensor), before the first shard; the shards then stream into it.
 */
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { GgufAssembly, VERIFIED_KEY } from '../output/gguf-assembly.js';
import { expectedTensors, fallbackWarning, llamaMetadata, resolveType, ropeScalingWarning } from '../output/gguf-llama.js';
import { ggufFileName, type GgufTypeName } from '../output/gguf-types.js';
import { lstatOrUndefined } from '../output/temp-file.js';
import type { GgufShardEntry } from '../output/state.js';
import type { DecodePlan } from '../plan/plan.js';
import { ggufModelName } from '../plan/output-names.js';
import { METHARME_CHAT_TEMPLATE } from '../release/prompt-format.js';
import { readJsonObject, readModelFiles } from './gguf-inputs.js';
import { closeGguf, openGgufFile, resumedResults, type GgufResumeContext } from './gguf-resume.js';
import type { DecodeReport, FileResult } from './results.js';
import type { RunContext } from './run-context.js';

const TORCH_DTYPE: Record<string, string> = { bfloat16: 'BF16', float16: 'F16', float32: 'F32' };

/** Why --gguf cannot go on without one of the release's files. */
function lacking(plan: DecodePlan, name: string): InputError {
  return new InputError(`--gguf needs the release's ${name}, and the XOR folder has none (or it did not verify)`, { file: plan.xorDir, hint: `download ${name}, or decode without --gguf` });
}

/** The GGUF a decode writes into, and the shards an interrupted run left in it (gguf-resume.ts). */
export async function openGgufAssembly(
  plan: DecodePlan,
  asked: GgufTypeName,
  force: boolean,
  ctx: GgufResumeContext,
): Promise<{ assembly: GgufAssembly; resumed: Map<string, GgufShardEntry>; leftOut: string | undefined }> {
  const intoGguf = plan.files.filter((f) => f.convert === 'gguf');
  const shardBytes = intoGguf.reduce((sum, f) => sum + f.payloadSize, 0);
  const { raw, config, configPath, vocab } = await readModelFiles(plan.outputDir, (name) => lacking(plan, name), { count: intoGguf.length, bytes: shardBytes });
  const dtype = TORCH_DTYPE[String(raw.torch_dtype)];
  if (!dtype) throw new InputError(`says torch_dtype ${JSON.stringify(raw.torch_dtype)}, so the GGUF's type cannot be chosen before the weights arrive`, { file: configPath, hint: 'pass --gguf f16, bf16, f32 or q8_0' });
  const type = resolveType(asked, dtype);
  const shapes = expectedTensors(config);
  const shardNames = intoGguf.map((f) => f.name);
  const shards = new Map<string, string[]>();
  if (shardNames.length === 1) shards.set(shardNames[0]!, [...shapes.keys()]);
  else {
    const indexPath = join(plan.outputDir, 'pytorch_model.bin.index.json');
    const index = await readJsonObject(indexPath);
    if (!index) throw lacking(plan, 'pytorch_model.bin.index.json');
    const map = (index.weight_map ?? {}) as Record<string, unknown>;
    for (const name of shapes.keys()) {
      const shard = map[name];
      if (typeof shard !== 'string' || !shardNames.includes(shard)) throw new InputError(`puts "${name}" in ${String(shard)}, which the XOR folder does not have`, { file: indexPath, hint: 'download every shard of the release' });
      shards.set(shard, [...(shards.get(shard) ?? []), name]);
    }
  }
  const name = ggufFileName(ggufModelName(plan), type);
  if ((await lstatOrUndefined(join(plan.outputDir, name))) && !force) {
    throw new InputError('already exists', { file: join(plan.outputDir, name), hint: 'use --force to write it again' });
  }
  const release = ggufModelName(plan);
  const metadata = llamaMetadata(config, vocab, type, { name: release, description: `${release}, decoded from its XOR release by metharme-xor` }, METHARME_CHAT_TEMPLATE);
  metadata.push([VERIFIED_KEY, { type: 'bool', value: false }]);
  const assembly = new GgufAssembly({ shapes, shards, type, dtype, headDim: config.dim / config.heads, layers: config.layers, metadata });
  return { assembly, resumed: await openGgufFile(assembly, name, plan, ctx), leftOut: ropeScalingWarning(config) };
}

/**
 * decode --gguf once the small files are in: the GGUF laid out (or an interrupted run's reopened, its
 * shards reported as they are), the other shards streamed into it by `runShards` (false: one of them
 * stopped the run), and the file finished; unfinished, it is removed or kept to resume.
 */
export async function decodeIntoGguf(
  plan: DecodePlan,
  ctx: RunContext,
  run: { force: boolean; shards: number[]; results: FileResult[] },
  runShards: (indices: number[]) => Promise<boolean>,
): Promise<NonNullable<DecodeReport['gguf']>> {
  const { assembly, resumed, leftOut } = await openGgufAssembly(plan, plan.gguf ?? 'auto', run.force, ctx);
  ctx.gguf = assembly;
  if (assembly.fellBack.length > 0) ctx.notify({ type: 'warning', message: fallbackWarning(assembly.fellBack, assembly.type) });
  if (leftOut) ctx.notify({ type: 'warning', message: leftOut });
  try {
    for (const [i, result] of resumedResults(plan.files, resumed)) {
      run.results[i] = result;
      ctx.notify({ type: 'file-done', result });
    }
    const finished = await runShards(run.shards.filter((i) => !run.results[i]));
    const done = finished ? await assembly.finish() : { written: false, bytes: 0, verified: false };
    if (done.written) await ctx.resume.forgetGguf();
    const gguf = { path: assembly.path, type: assembly.type, tensors: assembly.tensorCount, bytes: done.bytes, written: done.written, verified: done.verified };
    ctx.notify({ type: 'gguf-done', gguf });
    return gguf;
  } finally {
    await closeGguf(assembly, ctx);
  }
}
