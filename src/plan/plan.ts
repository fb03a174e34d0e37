/**
 * Planning: which files to produce from which inputs, how, and against which digests. Everything
 * that can be refused without decoding (missing folders, unsafe output location, unknown model,
 * XOR payloads without a base) is refused here, before a single byte is written.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isGzip, readHead } from '../codec/sources.js';
import { asReadError, InputError } from '../errors.js';
import { resolveExpectations, resolveInputDigests, type Expectations, type InputDigests } from '../release/expectations.js';
import { entriesByName, type ManifestEntry } from '../release/manifest.js';
import { checkOutputDir, isChecksumListName, requireDir } from './inputs.js';
import { refuseRepositoryRoot, refuseSwapped, resolveCacheRoot } from './layout.js';
import { isLfsPointer, lfsHint, repositoryOf } from './lfs.js';

export type FileAction = 'xor' | 'xor-gzip' | 'copy';

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
}

/** A JSON file larger than this is not a config; it is XORed without trying to parse it. */
const MAX_JSON_PROBE_BYTES = 64 << 20;

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
}

export async function planDecode(options: PlanOptions): Promise<DecodePlan> {
  const notes: string[] = [];
  const inFolder = async (path: string, role: string) => {
    const resolved = await resolveCacheRoot(await requireDir(path, role), role);
    if (resolved.note) notes.push(resolved.note);
    return resolved.dir;
  };
  const xorDir = await inFolder(options.xorDir, 'XOR folder');
  const baseDir = await inFolder(options.baseDir, 'base folder');
  await refuseRepositoryRoot(xorDir);
  const outputDir = await checkOutputDir(options.outputDir, [
    { path: xorDir, role: 'XOR folder' },
    { path: baseDir, role: 'base folder' },
  ]);
  const bundled = join(xorDir, 'SHA256SUMS');
  const expectations = await resolveExpectations({
    model: options.model,
    manifest: options.manifest,
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
  await refuseSwapped(
    files.flatMap((f) => (f.basePath ? [{ name: f.name, payloadPath: f.payloadPath, basePath: f.basePath }] : [])),
    xorDir,
    baseDir,
  );
  const known = expectations?.how === 'model' || expectations?.how === 'detected' ? expectations.model : undefined;
  const inputDigests = await resolveInputDigests({ xorDir, xorManifest: options.xorManifest, baseManifest: options.baseManifest, release: known });
  // Small files first: a wrong JSON or a bad setup shows up in seconds, not after a 10 GB shard.
  files.sort((a, b) => a.payloadSize - b.payloadSize || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const present = new Set(files.map((f) => f.name));
  const missing = [...expectedByName.keys()].filter((n) => !present.has(n)).sort();
  return { outputDir, xorDir, baseDir, files, expectations, missing, ignored: ignored.sort(), inputDigests, notes };
}
