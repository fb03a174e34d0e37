/**
 * The gguf job: a decoded LLaMA folder (torch `.bin` or safetensors shards, config.json,
 * tokenizer.model) written as one GGUF for llama.cpp, KoboldCpp and Ollama, tensor by tensor in the
 * order the shards hold them, in flat memory; the file gets its final name only when whole (a temp
 * in the output folder's state folder, under its lock).
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { asWriteError, InputError, throwIfInterrupted } from '../errors.js';
import { acquireLock } from '../output/lock.js';
import { ggufHeader, padTo, type GgmlType, type GgufTensorInfo } from '../output/gguf-format.js';
import { expectedTensors, fallbackWarning, ggufName, isQk, llamaConfig, llamaMetadata, resolveType, ropeScalingWarning, tensorType } from '../output/gguf-llama.js';
import { GGUF_TYPES, ggufFileName, typeLabel, type GgufTypeName } from '../output/gguf-types.js';
import { rowBytes } from '../output/gguf-tensors.js';
import { writeTensor } from '../output/tensor-writer.js';
import { BufferPool } from '../output/gguf-route.js';
import { commitTemp, createTemp, discardTemp, lstatOrUndefined, prepareOutputDir, tidyOutputDir } from '../output/temp-file.js';
import { openLocated, type LocatedTensors } from '../rebuild/located-tensors.js';
import { locateSafetensors, safetensorsFiles } from '../rebuild/safetensors-tensors.js';
import { binFiles, locateTorch } from '../rebuild/torch-zip-tensors.js';
import { METHARME_CHAT_TEMPLATE } from '../release/prompt-format.js';
import { requireDir } from '../plan/inputs.js';
import { checkOptions, COMMON_OPTIONS } from './options.js';
import { MODEL_FILES, readModelFiles } from './gguf-inputs.js';

export interface GgufOptions {
  /** A decoded model folder. */
  modelDir: string;
  type?: GgufTypeName;
  /** The GGUF to write (default: <folder name>-<TYPE>.gguf in the working directory). */
  out?: string;
  /** Replace an existing file. */
  force?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: { type: 'note' | 'warning'; message: string }) => void;
}

export interface GgufReport {
  path: string;
  type: string;
  tensors: number;
  bytes: number;
  notes: string[];
  exitCode: number;
}

interface Shards {
  files: string[];
  safetensors: boolean;
  /** Their bytes in all. */
  bytes: number;
}

/**
 * The folder's checkpoint shards as convert_hf_to_gguf picks them: its model*.safetensors files, or
 * else its pytorch_model*.bin files. Other .bin files a model folder often holds (training_args.bin,
 * a pickle of the trainer's settings) are no weights: left out, and said.
 */
async function findShards(dir: string, note: (message: string) => void): Promise<Shards> {
  const allSafetensors = await safetensorsFiles(dir);
  const safetensors = allSafetensors.filter((n) => n.startsWith('model'));
  const bins = await binFiles(dir);
  const files = safetensors.length > 0 ? safetensors : bins.filter((n) => n.startsWith('pytorch_model'));
  if (files.length === 0) throw new InputError('holds no checkpoint shards (pytorch_model*.bin or model*.safetensors)', { file: dir, hint: 'decode the release into it first' });
  const others = [...allSafetensors, ...bins].filter((n) => !files.includes(n));
  if (others.length > 0) note(`left out ${others.join(', ')}: not ${safetensors.length > 0 ? 'model*.safetensors' : 'pytorch_model*.bin'} shards, as convert_hf_to_gguf leaves them out`);
  const sizes = await Promise.all(files.map(async (f) => (await lstatOrUndefined(join(dir, f)))?.size ?? 0));
  return { files, safetensors: safetensors.length > 0, bytes: sizes.reduce((a, b) => a + b, 0) };
}

/** The tensors of the folder's shards, checked against the config: every LLaMA tensor, nothing else. */
async function openTensors(dir: string, shards: Shards, config: ReturnType<typeof llamaConfig>): Promise<LocatedTensors> {
  const tensors = await openLocated(dir, shards.files, shards.safetensors ? locateSafetensors : locateTorch, Buffer.alloc(0));
  try {
    const wanted = expectedTensors(config);
    for (const [name, shape] of wanted) {
      const t = tensors.get(name);
      if (!t) throw new InputError(`has no tensor "${name}", which a LLaMA of its config.json has`, { file: dir, hint: 'decode every shard of the release into the folder' });
      if (t.shape.join() !== shape.join()) throw new InputError(`holds "${name}" as ${JSON.stringify(t.shape)}, where its config.json says ${JSON.stringify(shape)}`, { file: t.file });
      if (!['F16', 'BF16', 'F32'].includes(t.dtype)) throw new InputError(`holds "${name}" as ${t.dtype}, which this GGUF writer does not convert`, { file: t.file });
    }
    const extra = tensors.names().filter((n) => !wanted.has(n) && !n.endsWith('.rotary_emb.inv_freq'));
    if (extra.length > 0) throw new InputError(`holds tensors a LLaMA has not: ${extra.slice(0, 3).join(', ')}`, { file: dir, hint: 'this GGUF writer converts plain LLaMA models' });
  } catch (err) {
    await tensors.close();
    throw err;
  }
  return tensors;
}

export async function convertToGguf(options: GgufOptions): Promise<GgufReport> {
  checkOptions(options, { modelDir: 'string' }, { ...COMMON_OPTIONS, type: 'string', out: 'string', force: 'boolean' });
  const asked = options.type ?? 'auto';
  if (!(GGUF_TYPES as readonly string[]).includes(asked)) throw new InputError(`unknown GGUF type "${asked}"`, { hint: `use one of: ${GGUF_TYPES.join(', ')}` });
  const notes: string[] = [];
  const note = (message: string, type: 'note' | 'warning' = 'note') => {
    notes.push(message);
    options.onEvent?.({ type, message });
  };
  const dir = await requireDir(options.modelDir, 'model folder');
  const shards = await findShards(dir, note);
  const { config, vocab } = await readModelFiles(
    dir,
    (name) =>
      name === 'config.json'
        ? new InputError('has no config.json', { file: dir, hint: 'decode the release into it first (config.json is one of its files)' })
        : new InputError('has no tokenizer.model', { file: dir, hint: "put the release's (or LLaMA's) tokenizer.model in the folder" }),
    { count: shards.files.length, bytes: shards.bytes },
  );
  const leftOut = ropeScalingWarning(config);
  if (leftOut) note(leftOut, 'warning');
  const tensors = await openTensors(dir, shards, config);
  try {
    const type = resolveType(asked, tensors.get('model.embed_tokens.weight')!.dtype);
    if (type === 'f16' && tensors.get('model.embed_tokens.weight')!.dtype === 'BF16') {
      note('the weights are bf16: F16 rounds them (values past 65504 become infinite, tiny ones zero); bf16 or f32 keep them exactly', 'warning');
    }
    const name = basename(dir);
    const out = resolve(options.out ?? ggufFileName(name, type));
    const order = tensors.names().filter((n) => ggufName(n) !== undefined);
    const infos: GgufTensorInfo[] = [];
    const fellBack: { name: string; type: GgmlType }[] = [];
    for (const n of order) {
      const t = tensors.get(n)!;
      const chosen = tensorType(n, t.shape, type, config.layers);
      if (chosen.fellBack) fellBack.push({ name: n, type: chosen.type });
      const cols = t.shape.length === 1 ? t.shape[0]! : t.shape.slice(1).reduce((a, b) => a * b, 1);
      const rows = t.shape.length === 1 ? 1 : t.shape[0]!;
      infos.push({ name: ggufName(n)!, ne: [...t.shape].reverse(), type: chosen.type, bytes: rowBytes(chosen.type, cols) * rows });
    }
    if (fellBack.length > 0) note(fallbackWarning(fellBack, typeLabel(type)), 'warning');
    const provenance = { name, description: `${name}, converted by metharme-xor from ${dir} (${tensors.get('model.embed_tokens.weight')!.dtype} shards) to ${typeLabel(type)}` };
    const { header } = ggufHeader(llamaMetadata(config, vocab, type, provenance, METHARME_CHAT_TEMPLATE), infos);
    await refuseReplacingInput(out, dir, [...shards.files, ...MODEL_FILES]);
    const bytes = await writeGguf(out, header, infos, tensors, order, config.dim / config.heads, options);
    return { path: out, type: typeLabel(type), tensors: infos.length, bytes, notes, exitCode: 0 };
  } finally {
    await tensors.close();
  }
}

/**
 * An --out that is a file the conversion reads (`--out ./m/pytorch_model-00001-of-00002.bin
 * --force` replaced the shard): refused, by the file's identity, whatever path or link names it.
 */
async function refuseReplacingInput(out: string, dir: string, inputs: readonly string[]): Promise<void> {
  const target = await stat(out, { bigint: true }).catch(() => undefined);
  if (!target) return;
  for (const name of inputs) {
    const input = await stat(join(dir, name), { bigint: true }).catch(() => undefined);
    if (input && input.dev === target.dev && input.ino === target.ino) {
      throw new InputError(`is the model folder's ${name}, which the conversion reads`, { file: out, hint: 'pass --out a new file, e.g. one ending in .gguf' });
    }
  }
}

async function writeGguf(out: string, header: Buffer, infos: GgufTensorInfo[], tensors: LocatedTensors, order: string[], headDim: number, options: GgufOptions): Promise<number> {
  const outputDir = dirname(out);
  const existing = await lstatOrUndefined(out);
  if (existing && !options.force) throw new InputError('already exists', { file: out, hint: 'use --force to replace it, or --out to write another file' });
  if (existing?.isDirectory()) throw new InputError('is a folder where the GGUF must go', { file: out, hint: 'pass a file name with --out' });
  await prepareOutputDir(outputDir);
  const lock = await acquireLock(outputDir);
  try {
    const temp = await createTemp(outputDir, basename(out));
    try {
      let at = 0;
      const write = async (data: Buffer) => {
        await temp.writeBuffered(data, data.length, at).catch((err: unknown) => {
          throw asWriteError(err, out, 'writing');
        });
        at += data.length;
      };
      await write(header);
      const pool = new BufferPool();
      for (let i = 0; i < order.length; i++) {
        throwIfInterrupted(options.signal);
        const t = tensors.get(order[i]!)!;
        const plan = { dtype: t.dtype, shape: t.shape, type: infos[i]!.type, permuteHead: isQk(order[i]!) ? headDim : undefined };
        const n = await writeTensor((offset, buf, length) => tensors.readLocated(t, offset, buf, length), plan, write, pool);
        if (n !== infos[i]!.bytes) throw new Error(`${order[i]}: ${n} bytes written where ${infos[i]!.bytes} were planned`);
        await write(Buffer.alloc(padTo(n)));
      }
      await commitTemp(temp);
      return at;
    } catch (err) {
      await discardTemp(temp);
      throw err;
    }
  } finally {
    await lock.release();
    await tidyOutputDir(outputDir);
  }
}
