/**
 * Planning: which files to produce from which inputs, how, and against which digests. Everything
 * that can be refused without decoding (missing folders, unsafe output location, unknown model,
 * XOR payloads without a base) is refused here, before a single byte is written.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, basename, join, resolve, sep } from 'node:path';
import { asReadError, InputError } from './errors.js';
import {
  entriesByName,
  MAX_MANIFEST_BYTES,
  parseManifest,
  type Manifest,
  type ManifestEntry,
} from './manifest.js';
import { detectModelFromPaths, findModel, listModels, modelEntries, type BuiltinModel } from './models.js';
import { isLfsPointer, lfsHint, repositoryOf } from './lfs.js';
import { isGzip, readHead } from './sources.js';

export type FileAction = 'xor' | 'xor-gzip' | 'copy';

/** Checksum lists published beside the payloads (as `encode` writes them) are not payloads. */
export function isChecksumListName(name: string): boolean {
  return /^(SHA256SUMS|MD5SUMS|SHA256SUM|MD5SUM)(\.[A-Za-z0-9_-]+)?$/i.test(name) || /\.(sha256|md5)$/i.test(name);
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
}

export interface Expectations {
  manifest: Manifest;
  /** How the digests were chosen: --model, --manifest, the XOR folder's SHA256SUMS, or recognised from a path. */
  how: 'model' | 'manifest' | 'xor-folder' | 'detected';
  model: BuiltinModel | undefined;
  /** For "detected": the folder the model name was read from. */
  detectedFrom: string | undefined;
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
}

export interface ExpectationOptions {
  model?: string | undefined;
  manifest?: string | undefined;
  /** Folders to recognise a release from when neither --model nor --manifest is given. */
  detectFrom?: readonly string[];
  /** Which kinds --model may name here. */
  allowKinds?: readonly BuiltinModel['kind'][];
  /** A checksum list shipped with the release, used when neither --model nor --manifest is given. */
  bundledManifest?: string | undefined;
}

/** A JSON file larger than this is not a config; it is XORed without trying to parse it. */
const MAX_JSON_PROBE_BYTES = 64 << 20;

export async function loadManifestFile(path: string): Promise<Manifest> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw asReadError(err, path);
  }
  if (!info.isFile()) throw new InputError('is not a file', { file: path, hint: 'pass a checksum list file to --manifest' });
  if (info.size > MAX_MANIFEST_BYTES) {
    throw new InputError(`is ${info.size} bytes, too large for a checksum list`, {
      file: path,
      hint: 'pass the checksum list (sha256sum/md5sum/rhash output), not a model file',
    });
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw asReadError(err, path);
  }
  return parseManifest(text, path);
}

export function requireModel(name: string, allowKinds: readonly BuiltinModel['kind'][] = ['release', 'base']): BuiltinModel {
  const model = findModel(name);
  const allowed = listModels().filter((m) => allowKinds.includes(m.kind));
  if (!model) {
    throw new InputError(`unknown model "${name}"`, {
      hint: `known: ${allowed.map((m) => m.name).join(', ')} (see "metharme-xor models")`,
    });
  }
  if (!allowKinds.includes(model.kind)) {
    throw new InputError(`"${name}" is a ${model.kind === 'base' ? 'base conversion' : 'release'}, not usable here`, {
      hint: `use one of: ${allowed.map((m) => m.name).join(', ')}`,
    });
  }
  return model;
}

export async function resolveExpectations(options: ExpectationOptions): Promise<Expectations | undefined> {
  if (options.model && options.manifest) {
    throw new InputError('--model and --manifest cannot be used together', { hint: 'pass one of them' });
  }
  if (options.manifest) {
    return {
      manifest: await loadManifestFile(options.manifest),
      how: 'manifest',
      model: undefined,
      detectedFrom: undefined,
    };
  }
  if (options.model) {
    const model = requireModel(options.model, options.allowKinds);
    return { manifest: { label: model.name, entries: modelEntries(model) }, how: 'model', model, detectedFrom: undefined };
  }
  if (options.bundledManifest) {
    return { manifest: await loadManifestFile(options.bundledManifest), how: 'xor-folder', model: undefined, detectedFrom: undefined };
  }
  const detected = detectModelFromPaths(options.detectFrom ?? [], options.allowKinds ?? ['release']);
  if (!detected) return undefined;
  return {
    manifest: { label: detected.model.name, entries: modelEntries(detected.model) },
    how: 'detected',
    model: detected.model,
    detectedFrom: detected.path,
  };
}

/** The real path of an input folder, or an InputError naming it. */
export async function requireDir(path: string, role: string): Promise<string> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const e = asReadError(err, path);
    throw new InputError(`${role} ${e.message}`, { file: path, hint: e.hint ?? 'check the path', cause: err });
  }
  if (!info.isDirectory()) throw new InputError(`${role} is not a folder`, { file: path, hint: 'pass a folder' });
  return realpath(path);
}

/** Resolves a path that may not exist yet through its nearest existing ancestor's real path. */
async function realpathLenient(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await realpath(absolute);
  } catch {
    const parent = dirname(absolute);
    if (parent === absolute) return absolute;
    return join(await realpathLenient(parent), basename(absolute));
  }
}

function isSameOrInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/** Output folders that would overwrite or mix with the inputs are refused. */
export async function checkOutputDir(outputDir: string, inputs: { path: string; role: string }[]): Promise<string> {
  const out = await realpathLenient(outputDir);
  for (const input of inputs) {
    if (isSameOrInside(out, input.path)) {
      throw new InputError(`output folder is ${out === input.path ? 'the same as' : 'inside'} the ${input.role} (${input.path})`, {
        file: outputDir,
        hint: 'choose an output folder outside the input folders',
      });
    }
  }
  return out;
}

function looksLikeJson(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) return undefined;
    return info.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw asReadError(err, path);
  }
}

/** Any payload or base that is a git-lfs pointer is refused before anything is decoded. */
async function refuseLfsPointers(files: readonly FilePlan[]): Promise<void> {
  const pointers: string[] = [];
  for (const f of files) {
    if (await isLfsPointer(f.payloadPath, f.payloadSize)) pointers.push(f.payloadPath);
    if (f.basePath && f.baseSize !== undefined && (await isLfsPointer(f.basePath, f.baseSize))) pointers.push(f.basePath);
  }
  const first = pointers[0];
  if (first === undefined) return;
  const more = pointers.length > 1 ? ` (and ${pointers.length - 1} more such files)` : '';
  throw new InputError(`is a git-lfs pointer file, not the data${more}`, { file: first, hint: lfsHint(await repositoryOf(first)) });
}

export interface PlanOptions extends ExpectationOptions {
  outputDir: string;
  xorDir: string;
  baseDir: string;
}

export async function planDecode(options: PlanOptions): Promise<DecodePlan> {
  const xorDir = await requireDir(options.xorDir, 'XOR folder');
  const baseDir = await requireDir(options.baseDir, 'base folder');
  const outputDir = await checkOutputDir(options.outputDir, [
    { path: xorDir, role: 'XOR folder' },
    { path: baseDir, role: 'base folder' },
  ]);
  const bundled = join(xorDir, 'SHA256SUMS');
  const expectations = await resolveExpectations({
    ...options,
    allowKinds: ['release'],
    bundledManifest: (await sizeOf(bundled)) === undefined ? undefined : bundled,
    detectFrom: [resolve(options.xorDir), xorDir, resolve(options.outputDir)],
  });
  const expectedByName = expectations ? entriesByName(expectations.manifest.entries) : new Map<string, ManifestEntry[]>();

  let entries;
  try {
    entries = await readdir(xorDir, { withFileTypes: true });
  } catch (err) {
    throw asReadError(err, xorDir);
  }
  const files: FilePlan[] = [];
  const ignored: string[] = [];
  for (const entry of entries) {
    const name = entry.name;
    const payloadPath = join(xorDir, name);
    // Hidden files are git/tool metadata (.gitattributes, our own state), never model files.
    if (name.startsWith('.') || isChecksumListName(name)) {
      ignored.push(name);
      continue;
    }
    const payloadSize = await sizeOf(payloadPath);
    if (payloadSize === undefined) {
      if (entry.isSymbolicLink() && !(await exists(payloadPath))) {
        throw new InputError('is a broken symbolic link', {
          file: payloadPath,
          hint: 'the file it points to is missing (an interrupted download?); download the release again',
        });
      }
      ignored.push(name);
      continue;
    }
    const basePath = join(baseDir, name);
    const baseSize = await sizeOf(basePath);
    const head = await readHead(payloadPath, 4);
    let action: FileAction = 'xor';
    let note: string | undefined;
    if (isGzip(head)) {
      action = 'xor-gzip';
    } else if (payloadSize <= MAX_JSON_PROBE_BYTES && (name.endsWith('.json') || baseSize === undefined)) {
      let content: Buffer;
      try {
        content = await readFile(payloadPath);
      } catch (err) {
        throw asReadError(err, payloadPath);
      }
      if (payloadSize > 0 && looksLikeJson(content)) {
        action = 'copy';
        note = baseSize === undefined ? 'plain JSON with no base counterpart, copied' : 'plain JSON payload, copied';
      }
    }
    if (action !== 'copy' && baseSize === undefined) {
      throw new InputError(`has no base counterpart ${basePath} and is not a plain JSON file`, {
        file: payloadPath,
        hint: 'check that <base-dir> is the LLaMA folder in Hugging Face format with all files (same names as the XOR files)',
      });
    }
    files.push({
      name,
      payloadPath,
      payloadSize,
      basePath: action === 'copy' ? undefined : basePath,
      baseSize,
      action,
      note,
      outputPath: join(outputDir, name),
      expected: expectedByName.get(name) ?? [],
    });
  }
  await refuseLfsPointers(files);
  // Small files first: a wrong JSON or a bad setup shows up in seconds, not after a 10 GB shard.
  files.sort((a, b) => a.payloadSize - b.payloadSize || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const present = new Set(files.map((f) => f.name));
  const missing = [...expectedByName.keys()].filter((n) => !present.has(n)).sort();
  return { outputDir, xorDir, baseDir, files, expectations, missing, ignored: ignored.sort() };
}
