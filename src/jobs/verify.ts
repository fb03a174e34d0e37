/**
 * The verify command: hash the files a manifest names in a folder and judge each one. check-base
 * runs the same job over a base folder.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pipeline } from '../codec/pipeline.js';
import { InputError } from '../errors.js';
import { folderNames } from '../plan/entries.js';
import { isChecksumListName, requireDir } from '../plan/inputs.js';
import { isLfsPointer, lfsHint, repositoryOf } from '../plan/lfs.js';
import { resolveExpectations, type Expectations } from '../release/expectations.js';
import { entriesByName, type ManifestEntry } from '../release/manifest.js';
import type { BuiltinModel } from '../release/models.js';
import { lfsPointer } from '../verify/diagnosis-text.js';
import { findMatch, primaryAlgorithm } from '../verify/digests.js';
import { checkFile, type HashOptions } from '../verify/hash-file.js';
import { hubInput } from '../plan/plan.js';
import { openInput } from './open-input.js';
import { isHfUrl, parseHfUrl } from '../hub/hf-url.js';
import { hubSettings } from '../hub/settings.js';
import { hubFilePath, offlineSnapshot, openHubFolder, type HubFolder } from '../plan/hub-folder.js';
import { judgePickle, PickleCheck } from '../verify/pickle-check.js';
import { checkOptions, COMMON_OPTIONS } from './options.js';
import { verdict, type FileVerdict } from './results.js';

export type VerifyFileResult = FileVerdict;

export interface VerifyReport {
  dir: string;
  manifest: { label: string; how: Expectations['how']; detectedFrom: string | null };
  files: VerifyFileResult[];
  totals: { files: number; verified: number; mismatch: number; missing: number; unverified: number; unsafe: number; bytes: number; seconds: number };
  exitCode: 0 | 1;
}

export type VerifyEvent =
  | { type: 'start'; files: number; bytes: number; manifest: VerifyReport['manifest'] }
  | { type: 'file-start'; name: string; bytes: number }
  | { type: 'progress'; name: string; bytes: number }
  | { type: 'file-done'; result: VerifyFileResult };

export interface VerifyOptions {
  dir: string;
  model?: string | undefined;
  manifest?: string | undefined;
  /** Files the manifest names that are absent are left out (as sha256sum -c --ignore-missing); none verified is still a failure. */
  ignoreMissing?: boolean | undefined;
  /** Files in the folder that the manifest does not cover are listed as unverified and fail the run. */
  strict?: boolean | undefined;
  signal?: AbortSignal | undefined;
  onEvent?: ((event: VerifyEvent) => void) | undefined;
}

export const VERIFY_OPTIONS = {
  required: { dir: 'string' },
  optional: { ...COMMON_OPTIONS, model: 'string', manifest: 'string', ignoreMissing: 'boolean', strict: 'boolean' },
} as const;

export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  checkOptions(options, VERIFY_OPTIONS.required, VERIFY_OPTIONS.optional);
  return verifyFolder(options, ['release', 'base']);
}

/**
 * A folder to check where it is: local, or (check-base only) on the Hub, at one commit. Offline, an
 * hf:// folder is its snapshot in the local cache. `kinds`: which built-in models --model and path
 * recognition may name (check-base: bases only).
 */
async function openFolder(text: string, kinds: readonly BuiltinModel['kind'][]): Promise<{ dir: string; hub: HubFolder | undefined; names: () => Promise<string[]> }> {
  if (isHfUrl(text)) {
    if (kinds.includes('release')) {
      throw new InputError('verify checks a local folder; a folder on the Hub is decoded (decode <output-dir> hf://...), or checked as a base with check-base', {
        file: text,
        hint: 'download it, or run check-base on a base conversion hosted on the Hub',
      });
    }
    const source = parseHfUrl(text);
    if (!hubSettings().offline) {
      const { folder, entries } = await openHubFolder(source);
      return { dir: text, hub: folder, names: async () => entries.map((e) => e.name) };
    }
    return localFolder(await offlineSnapshot(source));
  }
  return localFolder(text);
}

async function localFolder(text: string): Promise<{ dir: string; hub: undefined; names: () => Promise<string[]> }> {
  const dir = resolve(text);
  await requireDir(dir, 'folder to verify');
  return { dir, hub: undefined, names: () => folderNames(dir) };
}

/**
 * A file of a Hub folder: judged by the SHA-256 of the Hub's listing when the manifest gives SHA-256
 * (nothing is downloaded: the Hub serves the bytes its listing names), else fetched and hashed.
 */
async function checkHubFile(pipeline: Pipeline, folder: HubFolder, name: string, expected: readonly ManifestEntry[], options: HashOptions) {
  const file = folder.files.get(name)!;
  if (file.lfsSha256 && primaryAlgorithm(expected) === 'sha256') {
    const digests = { sha256: file.lfsSha256 };
    return { digests, match: findMatch(expected, digests), bytes: file.size };
  }
  const source = await openInput(hubFilePath(folder, file), file.size, hubInput({ folder }, name), options.signal);
  return checkFile(pipeline, source, expected, options);
}

export async function verifyFolder(options: VerifyOptions, kinds: readonly BuiltinModel['kind'][]): Promise<VerifyReport> {
  const started = performance.now();
  const { dir, hub, names } = await openFolder(options.dir, kinds);
  const expectations = await resolveExpectations({ model: options.model, manifest: options.manifest, detectFrom: [dir], allowKinds: kinds });
  if (!expectations) {
    throw new InputError('no manifest given and no model recognised from the path', {
      file: dir,
      hint: 'pass --model <name> (see "metharme-xor models") or --manifest <file>',
    });
  }
  const manifest = {
    label: expectations.manifest.label,
    how: expectations.how,
    detectedFrom: expectations.detectedFrom ?? null,
  };
  const listed = entriesByName(expectations.manifest.entries);
  const sizes = new Map<string, number | null>();
  for (const [name] of listed) {
    if (hub) {
      sizes.set(name, hub.files.get(name)?.size ?? null);
      continue;
    }
    try {
      const s = await stat(join(dir, name));
      sizes.set(name, s.isFile() ? s.size : null);
    } catch {
      sizes.set(name, null);
    }
  }
  const byName = [...listed]
    .filter(([name]) => !(options.ignoreMissing && sizes.get(name) === null))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // --strict: what the folder holds beyond the manifest cannot be verified, and says so.
  const uncovered = options.strict ? (await names()).filter((n) => !n.startsWith('.') && !listed.has(n) && !isChecksumListName(n)).sort() : [];
  const totalBytes = [...sizes.values()].reduce<number>((sum, n) => sum + (n ?? 0), 0);
  options.onEvent?.({ type: 'start', files: byName.length, bytes: totalBytes, manifest });

  const pipeline = new Pipeline();
  const files: VerifyFileResult[] = [];
  try {
    for (const [name, expected] of byName) {
      const t0 = performance.now();
      const path = join(dir, name);
      const algorithm = primaryAlgorithm(expected);
      const size = sizes.get(name) ?? null;
      let result: VerifyFileResult;
      if (size === null) {
        result = verdict({ name, expected, status: 'missing', seconds: 0, algorithm });
      } else {
        options.onEvent?.({ type: 'file-start', name, bytes: size });
        const pickles = new PickleCheck(name, size);
        const hashing: HashOptions = {
          signal: options.signal,
          onBytes: (bytes) => options.onEvent?.({ type: 'progress', name, bytes }),
          onChunk: (data) => pickles.feed(data),
        };
        const outcome = hub ? await checkHubFile(pipeline, hub, name, expected, hashing) : await checkFile(pipeline, path, expected, hashing);
        const pointer = !hub && !outcome.match && (await isLfsPointer(path, size));
        // A file that matches its digest must also be harmless to load.
        const safety = outcome.match ? judgePickle(name, pickles.finish(), false) : undefined;
        result = verdict({
          name,
          expected,
          status: safety?.status ?? (outcome.match ? 'verified' : 'mismatch'),
          seconds: (performance.now() - t0) / 1000,
          bytes: outcome.bytes,
          algorithm,
          digests: outcome.digests,
          match: outcome.match,
          diagnosis: pointer ? [lfsPointer(path, lfsHint(await repositoryOf(path)))] : safety ? [safety.diagnosis] : [],
        });
      }
      files.push(result);
      options.onEvent?.({ type: 'file-done', result });
    }
    for (const name of uncovered) {
      const result = verdict({ name, expected: [], status: 'unverified', seconds: 0 });
      files.push(result);
      options.onEvent?.({ type: 'file-done', result });
    }
  } finally {
    await pipeline.close();
  }
  const count = (s: VerifyFileResult['status']) => files.filter((f) => f.status === s).length;
  const totals = {
    files: files.length,
    verified: count('verified'),
    mismatch: count('mismatch'),
    missing: count('missing'),
    unverified: count('unverified'),
    unsafe: count('unsafe'),
    bytes: files.reduce((sum, f) => sum + (f.bytes ?? 0), 0),
    seconds: (performance.now() - started) / 1000,
  };
  // Nothing verified is a failure even when everything listed was missing and --ignore-missing left it out.
  return { dir, manifest, files, totals, exitCode: totals.verified === totals.files && totals.verified > 0 ? 0 : 1 };
}
