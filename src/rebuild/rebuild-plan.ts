/**
 * A base folder that holds LLaMA as Meta released it, or as another conversion (safetensors, or
 * torch `.bin` files of another sharding or torch version), instead of the files a release was
 * XORed against: the 2023 layout of its tensors, file by file, rebuilt on the fly. The model's dims
 * come from the tensors' shapes and params.json's `n_heads` or config.json's
 * `num_attention_heads`; the shard files from save_pretrained's 10 GB rule. A byte source per file is opened by `openRebuilt`.
 */
import { MemorySource, type ByteSource } from '../codec/sources.js';
import { InputError } from '../errors.js';
import { hfStateDict, type LlamaDims } from './llama-shapes.js';
import { RebuiltShard } from './rebuilt-shard.js';
import { invFreqBytes } from './inv-freq.js';
import { BF16_HINT, locatedShapes, openLocated, type Located, type LocatedTensors } from './located-tensors.js';
import { MetaTensors } from './meta-tensors.js';
import { locateSafetensors, safetensorsFiles } from './safetensors-tensors.js';
import { binFiles, locateTensors, locateTorch } from './torch-zip-tensors.js';
import { shardIndexJson, shardStateDict } from './shards.js';
import { folderOf, type SourceFolder } from './source-folder.js';
import type { RebuildInput, TensorOrigin } from './rebuild-input.js';
import { BASE_TARGETS, isBaseTarget, sideFiles, targetOfDims, type BaseTarget } from './side-files.js';

/**
 * A folder that holds LLaMA but cannot give the base a release needs (bf16, another size, a shard
 * missing, foreign tensors): its own message names the file and the fix, where a folder that holds
 * no LLaMA at all is only "no base counterpart".
 */
export class LlamaSourceError extends InputError {}

const locateOf = (origin: TensorOrigin) => (origin.kind === 'safetensors' ? locateSafetensors : locateTorch);

/** Meta's params.json: the dims the shapes cannot tell (the head count). */
async function metaParams(folder: SourceFolder): Promise<{ heads: number } | undefined> {
  const bytes = await folder.readSmall('params.json');
  if (bytes === undefined) return undefined;
  const p = jsonOf(bytes) as { n_heads?: unknown } | undefined;
  if (typeof p?.n_heads !== 'number' || !Number.isSafeInteger(p.n_heads) || p.n_heads <= 0) throw new InputError('has a params.json without n_heads', { file: folder.pathOf('params.json') });
  return { heads: p.n_heads };
}

function jsonOf(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The model's dims from Meta's shard 0 and the shard count. */
function metaDims(shapes: Map<string, Located>, shards: number, heads: number): LlamaDims | undefined {
  const embed = shapes.get('tok_embeddings.weight')?.shape;
  const w1 = shapes.get('layers.0.feed_forward.w1.weight')?.shape;
  if (!embed || !w1) return undefined;
  let layers = 0;
  while (shapes.has(`layers.${layers}.attention.wq.weight`)) layers++;
  return { dim: embed[1]! * shards, layers, heads, vocab: embed[0]!, intermediate: w1[0]! * shards };
}

export interface RebuildPlan {
  dir: string;
  origin: TensorOrigin;
  dims: LlamaDims;
  /** The built-in base conversion rebuilt (its known side files included), if the dims are one's. */
  target: BaseTarget | undefined;
  /** By base file name. */
  files: Map<string, RebuildInput>;
}

const describeDims = (d: LlamaDims) => `${d.dim}x${d.layers}, ${d.heads} heads`;

/**
 * The rebuild plan for `dir`, or undefined when it holds neither Meta's files, safetensors nor `.bin`
 * files. `target`: the base conversion wanted (a release's base, or `rebuild-base --as`); by default
 * the built-in one of the folder's dims.
 */
export async function planRebuild(source: string | SourceFolder, target?: string): Promise<RebuildPlan | undefined> {
  const folder = folderOf(source);
  const dir = folder.label;
  const names = await folder.names();
  const params = await metaParams(folder);
  if (params) {
    const files = names.filter((n) => /^consolidated\.\d\d\.pth$/.test(n)).sort();
    const dims = files.length > 0 ? metaDims(await locatedShapes(folder, files.slice(0, 1), locateTensors), files.length, params.heads) : undefined;
    if (!dims) throw new InputError('holds params.json but no consolidated.NN.pth with the tensors of Meta\'s release', { file: dir, hint: 'point the base at the folder of one LLaMA size (7B, 13B, ...)' });
    const missing = files.find((n, i) => n !== `consolidated.${String(i).padStart(2, '0')}.pth`);
    if (missing !== undefined) {
      throw new LlamaSourceError(`lacks consolidated.${String(files.indexOf(missing)).padStart(2, '0')}.pth: Meta's model-parallel shards are numbered from 00 without gaps`, { file: dir, hint: 'download the missing shard' });
    }
    // checklist.chk lists every shard Meta shipped: one that is listed and absent is missing.
    const listed = (await folder.readSmall('checklist.chk'))?.toString('utf8').match(/consolidated\.\d\d\.pth/g) ?? [];
    const absent = listed.find((n) => !files.includes(n));
    if (absent !== undefined) throw new LlamaSourceError(`lacks ${absent}, which its checklist.chk lists`, { file: dir, hint: 'download the missing shard' });
    const plan = layoutOf(folder, { kind: 'meta', files }, dims, target);
    // Meta ships tokenizer.model beside the size folders; the conversion copies it unchanged.
    const data = (await folder.readSmall('tokenizer.model')) ?? (await folder.parent()?.readSmall('tokenizer.model'));
    if (data) plan.files.set('tokenizer.model', { kind: 'bytes', data, size: data.length });
    return plan;
  }
  const safetensors = await safetensorsFiles(folder);
  const origin: TensorOrigin = safetensors.length > 0 ? { kind: 'safetensors', files: safetensors } : { kind: 'torch', files: await binFiles(folder) };
  if (origin.files.length === 0) return undefined;
  const shapes = await locatedShapes(folder, origin.files, locateOf(origin));
  const embedding = shapes.get('model.embed_tokens.weight');
  const embed = embedding?.shape;
  const gate = shapes.get('model.layers.0.mlp.gate_proj.weight')?.shape;
  if (!embed || embed.length !== 2 || !gate) {
    throw new InputError('holds weights that are not a LLaMA conversion (no model.embed_tokens.weight or mlp.gate_proj)', { file: dir, hint: 'point the base at a LLaMA folder' });
  }
  if (embedding!.dtype === 'BF16') {
    throw new LlamaSourceError('holds LLaMA in bf16: the exact base cannot be rebuilt from it', { file: embedding!.file, hint: BF16_HINT });
  }
  let layers = 0;
  while (shapes.has(`model.layers.${layers}.self_attn.q_proj.weight`)) layers++;
  const configBytes = await folder.readSmall('config.json');
  const config = configBytes && (jsonOf(configBytes) as { num_attention_heads?: unknown } | undefined);
  const heads = config?.num_attention_heads;
  if (typeof heads !== 'number' || !Number.isSafeInteger(heads) || heads <= 0 || embed[1]! % heads !== 0) {
    throw new LlamaSourceError('has no config.json giving num_attention_heads, which rebuilding the base needs', { file: dir, hint: 'keep the conversion\'s config.json beside its safetensors files' });
  }
  const dims = { dim: embed[1]!, layers, heads, vocab: embed[0]!, intermediate: gate[0]! };
  const wanted = new Set(hfStateDict(dims).map((t) => t.name));
  const extra = [...shapes.keys()].filter((n) => !wanted.has(n));
  if (extra.length > 0) {
    throw new LlamaSourceError(`holds tensors a LLaMA-1 conversion has not: ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ` and ${extra.length - 3} more` : ''}`, {
      file: dir,
      hint: 'point the base at a plain LLaMA-1 conversion (not a fine-tune, LLaMA 2 or a merged model)',
    });
  }
  return layoutOf(folder, origin, dims, target);
}

/** The 2023 files for `dims`, each to be rebuilt from `origin`. */
function layoutOf(folder: SourceFolder, origin: TensorOrigin, dims: LlamaDims, wanted: string | undefined): RebuildPlan {
  const dir = folder.label;
  const target = isBaseTarget(wanted) ? wanted : targetOfDims(dims);
  if (isBaseTarget(wanted) && targetOfDims(dims) !== wanted) {
    throw new LlamaSourceError(`holds LLaMA of another size (${describeDims(dims)}) than ${wanted} (${describeDims(BASE_TARGETS[wanted])})`, {
      file: dir,
      hint: `point the base at the LLaMA size ${wanted} was converted from`,
    });
  }
  const shards = shardStateDict(hfStateDict(dims));
  const files = new Map<string, RebuildInput>();
  for (const s of shards) {
    const archive = s.file.replace(/\.bin$/, '');
    files.set(s.file, { kind: 'shard', folder, dir, origin, headDim: dims.dim / dims.heads, archive, tensors: s.tensors, size: RebuiltShard.sizeOf(archive, s.tensors) });
  }
  if (shards.length > 1) {
    const data = Buffer.from(shardIndexJson(shards));
    files.set('pytorch_model.bin.index.json', { kind: 'bytes', data, size: data.length });
  }
  for (const [name, data] of target ? sideFiles(target) : []) files.set(name, { kind: 'bytes', data, size: data.length });
  return { dir, origin, dims, target, files };
}

async function openMeta(folder: SourceFolder, files: readonly string[], headDim: number): Promise<MetaTensors> {
  const shards: LocatedTensors[] = [];
  try {
    for (const f of files) shards.push(await openLocated(folder, [f], locateTensors, Buffer.alloc(0)));
  } catch (err) {
    for (const s of shards) await s.close();
    throw err;
  }
  return new MetaTensors(shards, headDim, invFreqBytes(headDim));
}

/** The rebuilt file as a byte source, from byte `start` on. */
export async function openRebuilt(path: string, input: RebuildInput, start = 0): Promise<ByteSource> {
  let source: ByteSource;
  if (input.kind === 'bytes') {
    source = new MemorySource(path, input.data);
  } else {
    const reader = input.origin.kind === 'meta' ? await openMeta(input.folder, input.origin.files, input.headDim) : await openLocated(input.folder, input.origin.files, locateOf(input.origin), invFreqBytes(input.headDim));
    try {
      reader.check(input.tensors);
    } catch (err) {
      await reader.close();
      throw err;
    }
    source = new RebuiltShard(path, input.archive, input.tensors, reader);
  }
  // A resumed file starts further on: the bytes before are made and dropped (CRCs need them).
  const scratch = Buffer.alloc(Math.min(start, 4 << 20));
  for (let left = start; left > 0; ) left -= await source.read(scratch, Math.min(left, scratch.length));
  return source;
}
