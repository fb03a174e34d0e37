/**
 * Verification: hashing files and matching them with published digests, and the `verify` command
 * over a folder of decoded files.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describeExpected, primaryAlgorithm } from '../verify/digests.js';
import { checkFile } from '../verify/hash-file.js';
import { asReadError, InputError } from '../errors.js';
import { entriesByName } from '../release/manifest.js';
import type { Algorithm, Diagnosis } from '../types.js';
import { Pipeline } from '../codec/pipeline.js';
import { resolveExpectations, type Expectations } from '../release/expectations.js';
import { isLfsPointer, lfsHint, repositoryOf } from '../plan/lfs.js';

export type VerifyStatus = 'ok' | 'mismatch' | 'missing';

export interface VerifyFileResult {
  name: string;
  bytes: number | null;
  algorithm: Algorithm;
  expected: { digest: string; algorithm: Algorithm; source: string }[];
  actual: string | null;
  matchedSource: string | null;
  status: VerifyStatus;
  seconds: number;
  /** Why a file failed and what to do, when that can be told. */
  diagnosis: Diagnosis[];
}

export interface VerifyReport {
  dir: string;
  manifest: { label: string; how: Expectations['how']; detectedFrom: string | null };
  files: VerifyFileResult[];
  totals: { files: number; ok: number; mismatch: number; missing: number; bytes: number; seconds: number };
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
  signal?: AbortSignal | undefined;
  onEvent?: ((event: VerifyEvent) => void) | undefined;
  /** Which built-in kinds --model and path recognition may name (default: all). */
  kinds?: readonly ('release' | 'base')[];
}

export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  const started = performance.now();
  const dir = resolve(options.dir);
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    throw asReadError(err, dir);
  }
  if (!info.isDirectory()) throw new InputError('is not a folder', { file: dir, hint: 'pass the folder of decoded files' });
  const expectations = await resolveExpectations({ ...options, detectFrom: [dir], allowKinds: options.kinds ?? ['release', 'base'] });
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
  const byName = [...entriesByName(expectations.manifest.entries)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const sizes = new Map<string, number | null>();
  for (const [name] of byName) {
    try {
      const s = await stat(join(dir, name));
      sizes.set(name, s.isFile() ? s.size : null);
    } catch {
      sizes.set(name, null);
    }
  }
  const totalBytes = [...sizes.values()].reduce<number>((sum, n) => sum + (n ?? 0), 0);
  options.onEvent?.({ type: 'start', files: byName.length, bytes: totalBytes, manifest });

  const pipeline = new Pipeline();
  const files: VerifyFileResult[] = [];
  try {
    for (const [name, expected] of byName) {
      const t0 = performance.now();
      const path = join(dir, name);
      const algorithm = primaryAlgorithm(expected)!;
      const size = sizes.get(name) ?? null;
      if (size === null) {
        const result: VerifyFileResult = {
          name,
          bytes: null,
          algorithm,
          expected: describeExpected(expected),
          actual: null,
          matchedSource: null,
          status: 'missing',
          seconds: 0,
          diagnosis: [],
        };
        files.push(result);
        options.onEvent?.({ type: 'file-done', result });
        continue;
      }
      options.onEvent?.({ type: 'file-start', name, bytes: size });
      const outcome = await checkFile(pipeline, path, expected, {
        signal: options.signal,
        onBytes: (bytes) => options.onEvent?.({ type: 'progress', name, bytes }),
      });
      const shown = outcome.match?.algorithm ?? algorithm;
      const result: VerifyFileResult = {
        name,
        bytes: outcome.bytes,
        algorithm: shown,
        expected: describeExpected(expected),
        actual: outcome.digests[shown] ?? null,
        matchedSource: outcome.match?.source ?? null,
        status: outcome.match ? 'ok' : 'mismatch',
        seconds: (performance.now() - t0) / 1000,
        diagnosis:
          !outcome.match && (await isLfsPointer(path, size))
            ? [{ code: 'lfs-pointer', message: `${path} is a git-lfs pointer file, not the data: ${lfsHint(await repositoryOf(path))}` }]
            : [],
      };
      files.push(result);
      options.onEvent?.({ type: 'file-done', result });
    }
  } finally {
    await pipeline.close();
  }
  const count = (s: VerifyStatus) => files.filter((f) => f.status === s).length;
  const totals = {
    files: files.length,
    ok: count('ok'),
    mismatch: count('mismatch'),
    missing: count('missing'),
    bytes: files.reduce((sum, f) => sum + (f.bytes ?? 0), 0),
    seconds: (performance.now() - started) / 1000,
  };
  return { dir, manifest, files, totals, exitCode: totals.ok === totals.files ? 0 : 1 };
}
