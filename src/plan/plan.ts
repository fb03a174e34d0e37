/**
 * Planning: which files to produce from which inputs, how, and against which digests. Everything
 * that can be refused without decoding (missing folders, unsafe output location, unknown model,
 * XOR payloads without a base) is refused here, before a single byte is written.
 */
import { dirname, join, resolve } from 'node:path';
import { InputError, throwIfInterrupted } from '../errors.js';
import type { RebuildPlan } from '../rebuild/rebuild-plan.js';
import { originText, type RebuildInput, type TensorOrigin } from '../rebuild/rebuild-input.js';
import { resolveExpectations, resolveInputDigests, type Expectations, type InputDigests } from '../release/expectations.js';
import { entriesByName, MAX_MANIFEST_BYTES, type ManifestEntry } from '../release/manifest.js';
import { chooseAction, inputSize, localEntries, type FileAction, type XorEntry } from './entries.js';
import type { HubFolder } from './hub-folder.js';
import { hubSettings } from '../hub/settings.js';
import { isHfUrl, parseHfUrl } from '../hub/hf-url.js';
import type { HubFile } from '../hub/client.js';
import { GGUF_TYPES, type GgufTypeName } from '../output/gguf-types.js';
import { ARGUMENT_ORDER, checkOutputDir, isChecksumListName, refuseOutputAsInput, requireDir } from './inputs.js';
import { refuseRepositoryRoot, refuseSwapped, resolveCacheRoot } from './layout.js';
import { isLfsPointer, lfsHint, repositoryOf } from './lfs.js';
import { addedOutputs, ggufModelName, outputNameOf, refuseSharedOutputs, type Conversion } from './output-names.js';

export type { FileAction } from './entries.js';

/** A file read from the Hub: its folder (client, commit), its listing entry, and its blob if the local cache has it. */
export interface HubInput {
  folder: HubFolder;
  file: HubFile;
  cached: string | undefined;
}

/** The repository, the revision asked for and the commit it resolved to: every request of the run names that commit. */
export interface HubRevision {
  repo: string;
  revision: string;
  commit: string;
}

export interface FilePlan {
  name: string;
  payloadPath: string;
  payloadSize: number;
  basePath: string | undefined;
  baseSize: number | undefined;
  action: FileAction;
  /** Why a file is copied rather than XORed, in words for the report. */
  note: string | undefined;
  outputPath: string;
  expected: ManifestEntry[];
  /** --safetensors: a checkpoint shard written as safetensors, or the shard index rewritten for them; --gguf: a shard streamed into the GGUF. */
  convert?: Conversion | undefined;
  /** For a payload on the Hub (payloadPath is then its hf:// address). */
  hub?: HubInput | undefined;
  /** For a base file on the Hub (basePath is then its hf:// address). */
  baseHub?: HubInput | undefined;
  /** For a base file rebuilt from another conversion in the base folder (basePath names it, and is no file). */
  baseRebuild?: RebuildInput | undefined;
  /** rebuild-base: the file itself is rebuilt (payloadPath names what it is made from). */
  payloadRebuild?: RebuildInput | undefined;
}

export interface DecodePlan {
  outputDir: string;
  xorDir: string;
  baseDir: string;
  files: FilePlan[];
  expectations: Expectations | undefined;
  /** Names the manifest lists that the XOR folder does not have. */
  missing: string[];
  /** Entries of the XOR folder that are not processed (folders, hidden files). */
  ignored: string[];
  /** Published digests of the inputs, which decide a failed file's cause. */
  inputDigests: InputDigests;
  /** What planning decided that the user should hear (e.g. a cache snapshot used for its model folder). */
  notes: string[];
  /** For an hf:// XOR folder: the commit it was read at. */
  source: HubRevision | undefined;
  /** For an hf:// base folder: the commit it was read at. */
  baseSource: HubRevision | undefined;
  /** When base files are rebuilt from LLaMA in another layout: what is rebuilt from what. */
  baseRebuild: BaseRebuild | undefined;
  /** What the run does to each file, for the user: decoding (the default) or rebuilding a base. */
  verb?: 'decoding' | 'rebuilding';
  /** The warning when nothing will be verified, if another than decode's. */
  nothingVerified?: string;
  /** decode --gguf: the type of the GGUF the shards go into. */
  gguf?: GgufTypeName | undefined;
  /** decode --chat-template: chat_template.jinja is written beside the outputs. */
  chatTemplate?: boolean | undefined;
}

export interface BaseRebuild {
  /** The built-in base conversion rebuilt, or null when the dims are none of them. */
  target: string | null;
  from: TensorOrigin['kind'];
  dir: string;
  sources: string[];
  /** The base files made from it. */
  files: string[];
}

export function baseRebuildOf(plan: RebuildPlan, used: readonly string[]): BaseRebuild {
  return { target: plan.target ?? null, from: plan.origin.kind, dir: plan.dir, sources: plan.origin.files, files: [...used] };
}

// The Hub's and the rebuilt bases' rooms are loaded only by a plan that enters them: a plain local
// decode starts sooner without their modules.
const hubRoom = () => import('./hub-folder.js');
const rebuildRoom = () => import('../rebuild/rebuild-plan.js');

/** An hf:// folder opened at one commit; offline (HF_HUB_OFFLINE), its snapshot in the local cache instead. */
async function openFolder(text: string, notes: string[]): Promise<{ local: string } | { hub: { folder: HubFolder; entries: XorEntry[] } } | undefined> {
  if (!isHfUrl(text)) return undefined;
  // Parsed once, here at the edge: the Hub client and the cache get the parsed source.
  const source = parseHfUrl(text);
  const { offlineSnapshot, openHubFolder } = await hubRoom();
  if (!hubSettings().offline) return { hub: await openHubFolder(source) };
  notes.push(`HF_HUB_OFFLINE is set: reading ${text} from the local cache`);
  return { local: await offlineSnapshot(source) };
}

/** A file of a Hub folder, by name, with its cached blob if any; undefined when the folder has no such file. */
export function hubInput(hub: { folder: HubFolder } | undefined, name: string): HubInput | undefined {
  const file = hub?.folder.files.get(name);
  return hub && file ? { folder: hub.folder, file, cached: hub.folder.cached.get(name) } : undefined;
}

function revisionOf(hub: { folder: HubFolder } | undefined): HubRevision | undefined {
  return hub && { repo: hub.folder.source.repo, revision: hub.folder.source.revision, commit: hub.folder.commit };
}

/** Files on disk that are git-lfs pointers are refused before anything is decoded, the first named, the rest counted. */
async function refuseLfsPointers(files: readonly { path: string; size: number }[]): Promise<void> {
  const pointers: string[] = [];
  for (const f of files) if (await isLfsPointer(f.path, f.size)) pointers.push(f.path);
  const first = pointers[0];
  if (first === undefined) return;
  const more = pointers.length > 1 ? ` (and ${pointers.length - 1} more such files)` : '';
  throw new InputError(`is a git-lfs pointer file, not the data${more}`, { file: first, hint: lfsHint(await repositoryOf(first)) });
}

/** What a decode is asked to do; every field is one a user can set. */
export interface PlanOptions {
  outputDir: string;
  xorDir: string;
  baseDir: string;
  /** A built-in release to verify against (see `listModels`). */
  model?: string | undefined;
  /** A checksum list file to verify against. */
  manifest?: string | undefined;
  /** Published digests of the XOR files (default: SHA256SUMS.xor in the XOR folder). */
  xorManifest?: string | undefined;
  /** Published digests of the base files (default: SHA256SUMS.base in the XOR folder, or the known release's base). */
  baseManifest?: string | undefined;
  /** Write checkpoint shards as safetensors (and the shard index for them) instead of .bin. */
  safetensors?: boolean | undefined;
  /** Write the checkpoint shards as one GGUF of this type instead of .bin files. */
  gguf?: GgufTypeName | undefined;
  /** Write the Metharme chat template beside the outputs as chat_template.jinja. */
  chatTemplate?: boolean | undefined;
}

export async function planDecode(options: PlanOptions, signal?: AbortSignal): Promise<DecodePlan> {
  if (options.gguf && options.safetensors) throw new InputError('--gguf and --safetensors cannot be used together', { hint: 'pass one of them' });
  if (options.gguf !== undefined && !(GGUF_TYPES as readonly string[]).includes(options.gguf)) throw new InputError(`unknown GGUF type "${options.gguf}"`, { hint: `use one of: ${GGUF_TYPES.join(', ')}` });
  const notes: string[] = [];
  const inFolder = async (path: string, role: string) => {
    const dir = await requireDir(path, role).catch((err: unknown) => {
      // A folder given in the wrong place is the likeliest cause of a missing one (the output, last).
      if (err instanceof InputError && !err.hint?.includes(ARGUMENT_ORDER)) throw new InputError(err.message, { file: err.file, hint: `${err.hint}; the order is: ${ARGUMENT_ORDER}`, cause: err.cause });
      throw err;
    });
    const resolved = await resolveCacheRoot(dir, role);
    if (resolved.note) notes.push(resolved.note);
    return resolved.dir;
  };
  // Offline, an hf:// source is its snapshot in the local cache: a local folder like any other.
  const xorOpened = await openFolder(options.xorDir, notes);
  const hub = xorOpened && 'hub' in xorOpened ? xorOpened.hub : undefined;
  const xorDir = hub ? options.xorDir : await inFolder(xorOpened && 'local' in xorOpened ? xorOpened.local : options.xorDir, 'XOR folder');
  const baseOpened = await openFolder(options.baseDir, notes);
  const baseHub = baseOpened && 'hub' in baseOpened ? baseOpened.hub : undefined;
  const baseDir = baseHub ? options.baseDir : await inFolder(baseOpened && 'local' in baseOpened ? baseOpened.local : options.baseDir, 'base folder');
  if (!hub) await refuseRepositoryRoot(xorDir);
  if (!hub) await refuseOutputAsInput(xorDir, 'XOR folder');
  if (!baseHub) await refuseOutputAsInput(baseDir, 'base folder');
  const outputDir = await checkOutputDir(options.outputDir, [
    ...(hub ? [] : [{ path: xorDir, role: 'XOR folder' }]),
    ...(baseHub ? [] : [{ path: baseDir, role: 'base folder' }]),
  ]);
  const entries = hub ? hub.entries : await localEntries(xorDir);
  const bundledEntry = entries.find((e) => e.name === 'SHA256SUMS' && typeof e.size === 'number');
  const expectations = await resolveExpectations({
    model: options.model,
    manifest: options.manifest,
    allowKinds: ['release'],
    bundledManifest: bundledEntry && { label: bundledEntry.path, read: () => bundledEntry.read(MAX_MANIFEST_BYTES + 1) },
    detectFrom: [options.xorDir, hub ? '' : resolve(options.xorDir), xorDir, resolve(options.outputDir)],
  });
  const expectedByName = expectations ? entriesByName(expectations.manifest.entries) : new Map<string, ManifestEntry[]>();

  // A clone holding git-lfs pointers: that is the first thing to fix, whatever the base.
  if (!hub) {
    await refuseLfsPointers(entries.flatMap((e) => (typeof e.size === 'number' && !e.name.startsWith('.') ? [{ path: e.path, size: e.size }] : [])));
  }
  const byNormalName = new Map([...expectedByName].map(([name, entries]) => [name.normalize('NFC'), { name, entries }]));
  let rebuild: Promise<RebuildPlan | Error | undefined> | undefined;
  let rebuilt: RebuildPlan | undefined;
  /** The rebuild the base folder allows, or why none; rejects when its LLaMA weights cannot give this base (that error names the file and the fix). */
  const rebuildOf = () =>
    (rebuild ??= (async () => {
      const { LlamaSourceError, planRebuild } = await rebuildRoom();
      const folder = baseHub ? new (await import('./hub-rebuild-folder.js')).HubRebuildFolder(baseHub.folder, baseDir, signal) : baseDir;
      const plan = await planRebuild(folder, expectations?.model?.base).catch((err: unknown) => {
        if (err instanceof LlamaSourceError) throw err;
        return err as Error;
      });
      if (plan instanceof Error) return plan;
      rebuilt = plan;
      if (plan) notes.push(`rebuilding ${plan.target ?? 'the 2023 conversion'} (LLaMA ${plan.dims.dim}x${plan.dims.layers}) from ${originText(plan.origin)} in ${baseDir}: the files the release was XORed against are made on the fly (nothing is written), and each output is proven by its published digest`);
      return plan;
    })());
  const ignored: string[] = [];
  const decoded: (XorEntry & { size: number })[] = [];
  for (const entry of entries) {
    const { name, size } = entry;
    // Hidden files are git/tool metadata (.gitattributes, our own state), never model files.
    if (name.startsWith('.') || isChecksumListName(name)) ignored.push(name);
    else if (size === 'folder' || size === undefined) {
      ignored.push(name);
      notes.push(`${entry.path} is a folder: not decoded (the XOR folder is read without its subfolders)`);
    } else decoded.push({ ...entry, size });
  }
  // Before a byte is read: a Hub entry's first bytes are a request.
  refuseSharedOutputs(
    decoded.map((e) => ({ name: e.name, payloadPath: e.path, output: outputNameOf(e.name, options).name })),
    addedOutputs(options, ggufModelName({ expectations, outputDir })),
  );
  const files: FilePlan[] = [];
  for (const entry of decoded) {
    throwIfInterrupted(signal);
    const { name, path: payloadPath, size: payloadSize } = entry;
    const baseFile = hubInput(baseHub, name);
    const basePath = baseFile ? (await hubRoom()).hubFilePath(baseFile.folder, baseFile.file) : baseHub ? `${baseDir.replace(/\/$/, '')}/${name}` : join(baseDir, name);
    const baseInfo = baseHub ? baseFile?.file.size : await inputSize(basePath, 'base file');
    if (baseInfo === 'folder') throw new InputError('base file is a folder', { file: basePath, hint: `the base folder must hold a file named ${name}` });
    let baseSize = baseInfo;
    let { action, note } = await chooseAction(name, entry.read, payloadSize, baseSize);
    let baseRebuild: RebuildInput | undefined;
    if (action !== 'copy' && baseSize === undefined) {
      // No such file, but the base folder may hold LLaMA in another layout: the file is rebuilt from it.
      const made = await rebuildOf();
      baseRebuild = made instanceof Error ? undefined : made?.files.get(name);
      if (!baseRebuild) {
        throw new InputError(`has no base counterpart ${basePath} and is not a plain JSON file`, {
          file: payloadPath,
          hint: `check that <base-dir> is the LLaMA folder in Hugging Face format with all files (same names as the XOR files)${made instanceof Error ? `; it cannot be rebuilt from the folder either: ${made.message}` : made ? `; the ${made.target ?? '2023'} conversion's bytes of ${name} are not known: put the published file in ${baseDir}` : ''}`,
        });
      }
      baseSize = baseRebuild.size;
      ({ action, note } = await chooseAction(name, entry.read, payloadSize, baseSize));
    }
    let expected = expectedByName.get(name);
    if (!expected) {
      // macOS writes names decomposed (NFD), manifests are usually composed (NFC): same name to a user.
      const normal = byNormalName.get(name.normalize('NFC'));
      if (normal) {
        expected = normal.entries;
        expectedByName.delete(normal.name);
        expectedByName.set(name, normal.entries);
        notes.push(`${name}: the manifest's name for it differs only in Unicode normalisation (NFC/NFD); it is verified against that entry`);
      }
    }
    const converted = outputNameOf(name, options);
    const outputPath = join(outputDir, converted.name);
    // A Hub listing's names are checked when it is read; a local folder's are its own files' names.
    if (dirname(outputPath) !== outputDir) throw new InputError('has a name that would leave the output folder', { file: payloadPath, hint: 'rename it, or take it out of the XOR folder' });
    files.push({
      name,
      payloadPath,
      payloadSize,
      basePath: action === 'copy' ? undefined : basePath,
      baseSize,
      action,
      note: converted.convert === 'gguf' ? 'written into the GGUF' : converted.convert ? `written as ${converted.name}` : note,
      outputPath,
      expected: expected ?? [],
      convert: converted.convert,
      hub: hubInput(hub, name),
      baseHub: action === 'copy' ? undefined : baseFile,
      baseRebuild: action === 'copy' ? undefined : baseRebuild,
    });
  }
  // The payloads were checked before the base was looked at; here the base files on disk (a Hub
  // serves data, not pointer files).
  await refuseLfsPointers(files.flatMap((f) => (f.basePath && !f.baseHub && !f.baseRebuild && f.baseSize !== undefined ? [{ path: f.basePath, size: f.baseSize }] : [])));
  if (!hub && !baseHub) {
    await refuseSwapped(
      files.flatMap((f) => (f.basePath && !f.baseRebuild ? [{ name: f.name, payloadPath: f.payloadPath, basePath: f.basePath }] : [])),
      xorDir,
      baseDir,
    );
  }
  const known = expectations?.how === 'model' || expectations?.how === 'detected' ? expectations.model : undefined;
  const inputDigests = await resolveInputDigests({ xorDir, xorManifest: options.xorManifest, baseManifest: options.baseManifest, release: known });
  // Small files first: a wrong JSON or a bad setup shows up in seconds, not after a 10 GB shard.
  files.sort((a, b) => a.payloadSize - b.payloadSize || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const present = new Set(files.map((f) => f.name));
  const missing = [...expectedByName.keys()].filter((n) => !present.has(n)).sort();
  const rebuiltFiles = files.filter((f) => f.baseRebuild).map((f) => f.name);
  return {
    outputDir,
    xorDir,
    baseDir,
    files,
    expectations,
    missing,
    ignored: ignored.sort(),
    inputDigests,
    notes,
    source: revisionOf(hub),
    baseSource: revisionOf(baseHub),
    baseRebuild: rebuilt && rebuiltFiles.length > 0 ? baseRebuildOf(rebuilt, rebuiltFiles) : undefined,
    gguf: options.gguf,
    chatTemplate: options.chatTemplate,
  };
}
