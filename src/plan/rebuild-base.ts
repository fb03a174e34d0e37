/**
 * The plan of `rebuild-base`: every file of the 2023 base conversion that can be made from a LLaMA
 * folder in another layout, each judged by the base's published digests like a decoded file. It is a
 * decode plan whose payloads are rebuilt and XORed with nothing, so writing, resuming, locking and
 * judging are decode's own.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { isHfUrl } from '../hub/hf-url.js';
import { planRebuild } from '../rebuild/rebuild-plan.js';
import { originText, type RebuildInput } from '../rebuild/rebuild-input.js';
import { isBaseTarget, BASE_TARGETS } from '../rebuild/side-files.js';
import { requireModel, resolveExpectations, type Expectations } from '../release/expectations.js';
import { entriesByName, type ManifestEntry } from '../release/manifest.js';
import { baseRebuildOf, type DecodePlan, type FilePlan } from './plan.js';
import { checkOutputDir, refuseOutputAsInput, requireDir } from './inputs.js';
import { refuseSharedOutputs } from './output-names.js';

export interface RebuildBaseOptions {
  outputDir: string;
  /** LLaMA as Meta released it, or another conversion of it. */
  source: string;
  /** The base conversion to rebuild (llama-13b-hf), or a release whose base it is; by default the one of the source's size. */
  as?: string | undefined;
  /** Digests to judge the rebuilt files by, instead of the built-in base's. */
  manifest?: string | undefined;
}

/** Side files a conversion leaves beside its weights are copied only when they are the published ones. */
const COPIED_MAX_BYTES = 64 << 20;

/** The base conversion `--as` names: a base, or a release's base. */
function targetOf(as: string | undefined): string | undefined {
  if (as === undefined) return undefined;
  const model = requireModel(as);
  const target = model.kind === 'base' ? model.name : model.base;
  if (!isBaseTarget(target)) {
    throw new InputError(`"${as}" is not a base conversion this tool can rebuild`, { hint: `use one of: ${Object.keys(BASE_TARGETS).join(', ')}` });
  }
  return target;
}

/** Whether bytes match their published digest, by the rule every output is judged by. */
export type IsPublished = (data: Buffer, expected: readonly ManifestEntry[]) => Promise<boolean>;

/** A file of the folder kept as it is, when its bytes are the published ones. */
async function publishedCopy(path: string, expected: readonly ManifestEntry[], isPublished: IsPublished): Promise<Buffer | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile() || info.size > COPIED_MAX_BYTES) return undefined;
  const data = await readFile(path);
  return (await isPublished(data, expected)) ? data : undefined;
}

export async function planRebuildBase(options: RebuildBaseOptions, isPublished: IsPublished): Promise<DecodePlan> {
  if (isHfUrl(options.source)) {
    throw new InputError('is on the Hub: rebuild-base reads a local folder', { file: options.source, hint: 'download the LLaMA folder first, or give it to decode as <base-dir>, which reads it from the Hub' });
  }
  const wanted = targetOf(options.as);
  const dir = await requireDir(options.source, 'LLaMA folder');
  await refuseOutputAsInput(dir, 'LLaMA folder');
  const rebuild = await planRebuild(dir, wanted);
  if (!rebuild) {
    throw new InputError('holds no LLaMA weights to rebuild from', {
      file: dir,
      hint: "point it at Meta's release of one size (params.json, consolidated.NN.pth) or a Hugging Face conversion (*.safetensors or pytorch_model*.bin, with config.json)",
    });
  }
  const outputDir = await checkOutputDir(options.outputDir, [{ path: dir, role: 'LLaMA folder' }]);
  const target = wanted ?? rebuild.target;
  const expectations: Expectations | undefined = await resolveExpectations({ model: options.manifest ? undefined : target, manifest: options.manifest, allowKinds: ['base'] });
  const expectedByName = entriesByName(expectations?.manifest.entries ?? []);
  const notes: string[] = [`rebuilding ${target ?? 'the 2023 conversion'} (LLaMA ${rebuild.dims.dim}x${rebuild.dims.layers}) from ${originText(rebuild.origin)} in ${dir}`];
  const inputs = new Map<string, { input: RebuildInput; note: string }>();
  for (const [name, input] of rebuild.files) inputs.set(name, { input, note: input.kind === 'shard' ? 'rebuilt' : name === 'tokenizer.model' ? 'copied' : 'made by the 2023 recipe' });
  const unknown: string[] = [];
  for (const [name, expected] of expectedByName) {
    if (inputs.has(name)) continue;
    const data = await publishedCopy(join(dir, name), expected, isPublished);
    if (data) inputs.set(name, { input: { kind: 'bytes', data, size: data.length }, note: 'copied: its published digest' });
    else unknown.push(name);
  }
  if (unknown.length > 0) {
    notes.push(`not rebuilt, as their bytes cannot be made from the weights: ${unknown.sort().join(', ')}; where a release needs them, put the published files in the output folder`);
  }
  const files: FilePlan[] = [...inputs].map(([name, { input, note }]) => ({
    name,
    payloadPath: input.kind === 'shard' ? join(dir, input.origin.files[0]!) : dir,
    payloadSize: input.size,
    basePath: undefined,
    baseSize: undefined,
    action: 'copy',
    note,
    outputPath: join(outputDir, name),
    expected: expectedByName.get(name) ?? [],
    payloadRebuild: input,
  }));
  refuseSharedOutputs(files.map((f) => ({ name: f.name, payloadPath: f.payloadPath, output: f.name })));
  files.sort((a, b) => a.payloadSize - b.payloadSize || (a.name < b.name ? -1 : 1));
  return {
    outputDir,
    xorDir: dir,
    baseDir: dir,
    files,
    expectations,
    missing: [],
    ignored: [],
    inputDigests: { payload: undefined, base: undefined },
    notes,
    source: undefined,
    baseSource: undefined,
    baseRebuild: baseRebuildOf(rebuild, files.filter((f) => f.payloadRebuild?.kind === 'shard').map((f) => f.name)),
    verb: 'rebuilding',
    nothingVerified: `NOTHING WILL BE VERIFIED: LLaMA ${rebuild.dims.dim}x${rebuild.dims.layers} is none of the built-in base conversions; pass --manifest <file> with the digests of the conversion wanted`,
  };
}
