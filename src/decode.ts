/**
 * The decode job: plan, then for each file stream payload XOR base into a temporary file while
 * hashing it, compare with the published digest, and only then give it its final name.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { primaryAlgorithm } from './digests.js';
import { InputError, InterruptedError, MetharmeXorError } from './errors.js';
import type { Algorithm } from './manifest.js';
import {
  commitTemp,
  createTemp,
  discardTemp,
  lstatOrUndefined,
  prepareOutputDir,
  stateDir,
  tidyOutputDir,
  type TempFile,
} from './output.js';
import { peakRssBytes } from './memory.js';
import { Pipeline } from './pipeline.js';
import { planDecode, type DecodePlan, type FileAction, type FilePlan, type PlanOptions } from './plan.js';
import { FileSource, GzipSource, type ByteSource } from './sources.js';
import { checkFile, describeExpected, matchWithFallback } from './verify.js';

export type FileStatus = 'verified' | 'mismatch' | 'unverified' | 'skipped' | 'missing';

export interface FileResult {
  name: string;
  bytes: number | null;
  action: FileAction | 'none';
  /** The algorithm of `actual`: the one that matched, else the one computed first. */
  algorithm: Algorithm | null;
  expected: { digest: string; algorithm: Algorithm; source: string }[];
  actual: string | null;
  matchedSource: string | null;
  status: FileStatus;
  seconds: number;
  note: string | null;
}

export interface DecodeReport {
  outputDir: string;
  xorDir: string;
  baseDir: string;
  verifiedAgainst: { label: string; how: 'model' | 'manifest' | 'detected'; detectedFrom: string | null } | null;
  files: FileResult[];
  ignored: string[];
  totals: {
    files: number;
    bytes: number;
    seconds: number;
    verified: number;
    mismatch: number;
    unverified: number;
    skipped: number;
    missing: number;
    /** Peak resident memory of this process so far (bytes): flat whatever the file sizes. */
    peakRssBytes: number;
  };
  /** 0 when every file was produced and verified (or verification was not asked for), else 1. */
  exitCode: 0 | 1;
}

export type DecodeEvent =
  | { type: 'plan'; plan: DecodePlan; totalBytes: number }
  | { type: 'warning'; message: string }
  | { type: 'file-start'; name: string; bytes: number; action: FileAction; checking: boolean }
  | { type: 'progress'; name: string; bytes: number }
  | { type: 'file-done'; result: FileResult };

export interface DecodeOptions extends PlanOptions {
  /** Hash outputs and compare with the manifest (default true). */
  verify?: boolean;
  /** Replace existing outputs instead of checking them (default false). */
  force?: boolean;
  /** Files decoded at once (default: from the number of cores). */
  jobs?: number;
  signal?: AbortSignal;
  onEvent?: (event: DecodeEvent) => void;
}

export function defaultJobs(): number {
  // Each job keeps one core busy hashing and another on I/O and XOR.
  return Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));
}

interface Context {
  plan: DecodePlan;
  verify: boolean;
  force: boolean;
  signal: AbortSignal;
  emit: (event: DecodeEvent) => void;
}

async function openSource(file: FilePlan): Promise<ByteSource> {
  return file.action === 'xor-gzip' ? new GzipSource(file.payloadPath) : FileSource.open(file.payloadPath);
}

function baseResult(file: FilePlan): Omit<FileResult, 'status' | 'seconds'> {
  return {
    name: file.name,
    bytes: null,
    action: file.action,
    algorithm: primaryAlgorithm(file.expected) ?? null,
    expected: describeExpected(file.expected),
    actual: null,
    matchedSource: null,
    note: file.note ?? null,
  };
}

/** An output already in place is kept when it verifies, and is never silently overwritten. */
async function checkExisting(file: FilePlan, pipeline: Pipeline, ctx: Context, t0: number): Promise<FileResult | undefined> {
  const existing = await lstatOrUndefined(file.outputPath);
  // A symlink is not our output: it is replaced, and its target is never written through.
  if (!existing || existing.isSymbolicLink()) return undefined;
  if (existing.isDirectory()) {
    throw new InputError('is a folder where an output file must go', { file: file.outputPath, hint: 'move it away' });
  }
  if (ctx.force) return undefined;
  if (!ctx.verify || file.expected.length === 0) {
    throw new InputError('already exists and cannot be checked (no published digest)', {
      file: file.outputPath,
      hint: 'use --force to overwrite it',
    });
  }
  ctx.emit({ type: 'file-start', name: file.name, bytes: existing.size, action: file.action, checking: true });
  const outcome = await checkFile(pipeline, file.outputPath, file.expected, {
    signal: ctx.signal,
    onBytes: (bytes) => ctx.emit({ type: 'progress', name: file.name, bytes }),
  });
  if (!outcome.match) {
    throw new InputError(`already exists and does not match ${ctx.plan.expectations?.manifest.label ?? 'the manifest'}`, {
      file: file.outputPath,
      hint: 'use --force to replace it',
    });
  }
  return {
    ...baseResult(file),
    bytes: outcome.bytes,
    algorithm: outcome.match.algorithm,
    actual: outcome.digests[outcome.match.algorithm] ?? null,
    matchedSource: outcome.match.source,
    status: 'skipped',
    note: 'already present and verified',
    seconds: (performance.now() - t0) / 1000,
  };
}

async function decodeFile(file: FilePlan, pipeline: Pipeline, ctx: Context): Promise<FileResult> {
  const t0 = performance.now();
  const kept = await checkExisting(file, pipeline, ctx, t0);
  if (kept) return kept;

  ctx.emit({ type: 'file-start', name: file.name, bytes: file.payloadSize, action: file.action, checking: false });
  const primary = ctx.verify ? primaryAlgorithm(file.expected) : undefined;
  const temp: TempFile = await createTemp(ctx.plan.outputDir, file.name, { direct: pipeline.directAligned });
  let committed = false;
  try {
    const source = await openSource(file);
    let base: ByteSource | undefined;
    let streamed;
    try {
      base = file.basePath ? await FileSource.open(file.basePath) : undefined;
      streamed = await pipeline.run({
        source,
        base,
        output: temp,
        algorithms: primary ? [primary] : [],
        signal: ctx.signal,
        onBytes: (bytes) => ctx.emit({ type: 'progress', name: file.name, bytes }),
      });
    } finally {
      await source.close();
      await base?.close();
    }
    if (file.action !== 'xor-gzip' && streamed.bytes !== file.payloadSize) {
      throw new InputError(`changed size while being read (${file.payloadSize} -> ${streamed.bytes} bytes)`, {
        file: file.payloadPath,
        hint: 'make sure no other program is writing the XOR files, then run again',
      });
    }
    let status: FileStatus = 'unverified';
    let outcome = { digests: streamed.digests, match: undefined as FileResult['expected'][number] | undefined };
    if (primary) {
      // Reads the temporary file again only when the first algorithm matched nothing.
      const matched = await matchWithFallback(pipeline, temp.tempPath, file.expected, streamed.digests, { signal: ctx.signal });
      outcome = { digests: matched.digests, match: matched.match };
      status = matched.match ? 'verified' : 'mismatch';
    }
    if (status !== 'mismatch') {
      await commitTemp(temp);
      committed = true;
    }
    const shown = outcome.match?.algorithm ?? primary ?? null;
    return {
      ...baseResult(file),
      bytes: streamed.bytes,
      algorithm: shown,
      actual: shown ? (outcome.digests[shown] ?? null) : null,
      matchedSource: outcome.match?.source ?? null,
      status,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    if (!committed) await discardTemp(temp);
  }
}

export async function decode(options: DecodeOptions): Promise<DecodeReport> {
  const started = performance.now();
  const emit = options.onEvent ?? (() => undefined);
  const verify = options.verify !== false;
  const plan = await planDecode(options);
  const totalBytes = plan.files.reduce((sum, f) => sum + f.payloadSize, 0);
  emit({ type: 'plan', plan, totalBytes });
  if (verify && !plan.expectations) {
    emit({
      type: 'warning',
      message:
        'NOTHING WILL BE VERIFIED: no release recognised from the paths; pass --model <name> or --manifest <file>',
    });
  }
  for (const name of plan.missing) {
    emit({
      type: 'warning',
      message: `${name}: listed in ${plan.expectations?.manifest.label} but not in the XOR folder ${plan.xorDir}; download it, or the output will be incomplete`,
    });
  }
  await prepareOutputDir(plan.outputDir);

  const internal = new AbortController();
  const onExternalAbort = () => internal.abort(options.signal?.reason);
  if (options.signal?.aborted) onExternalAbort();
  options.signal?.addEventListener('abort', onExternalAbort);
  const ctx: Context = { plan, verify, force: options.force === true, signal: internal.signal, emit };
  const results: FileResult[] = new Array(plan.files.length);
  let next = 0;
  let firstError: unknown;
  const lane = async () => {
    const pipeline = new Pipeline({ outputDir: stateDir(plan.outputDir) });
    try {
      while (next < plan.files.length && !internal.signal.aborted) {
        const index = next++;
        const result = await decodeFile(plan.files[index]!, pipeline, ctx);
        results[index] = result;
        emit({ type: 'file-done', result });
      }
    } catch (err) {
      // The first failure is the one to report; the lanes it stops throw InterruptedError after it.
      if (firstError === undefined) firstError = err;
      else if (firstError instanceof InterruptedError && !(err instanceof InterruptedError)) firstError = err;
      internal.abort('failed');
    } finally {
      await pipeline.close();
    }
  };
  const jobs = Math.max(1, Math.min(options.jobs ?? defaultJobs(), plan.files.length || 1));
  await Promise.all(Array.from({ length: jobs }, lane));
  options.signal?.removeEventListener('abort', onExternalAbort);
  await tidyOutputDir(plan.outputDir);
  if (firstError !== undefined) {
    if (firstError instanceof MetharmeXorError) throw firstError;
    throw firstError;
  }

  const files = results.filter(Boolean);
  for (const name of plan.missing) {
    const expected = plan.expectations!.manifest.entries.filter((e) => e.name === name);
    const result: FileResult = {
      name,
      bytes: null,
      action: 'none',
      algorithm: primaryAlgorithm(expected) ?? null,
      expected: describeExpected(expected),
      actual: null,
      matchedSource: null,
      status: 'missing',
      seconds: 0,
      note: 'listed in the manifest but not in the XOR folder',
    };
    files.push(result);
    emit({ type: 'file-done', result });
  }
  const count = (s: FileStatus) => files.filter((f) => f.status === s).length;
  const totals = {
    files: files.length,
    bytes: files.reduce((sum, f) => sum + (f.status === 'skipped' ? 0 : (f.bytes ?? 0)), 0),
    seconds: (performance.now() - started) / 1000,
    verified: count('verified'),
    mismatch: count('mismatch'),
    unverified: count('unverified'),
    skipped: count('skipped'),
    missing: count('missing'),
    peakRssBytes: peakRssBytes(),
  };
  const exp = plan.expectations;
  return {
    outputDir: plan.outputDir,
    xorDir: plan.xorDir,
    baseDir: plan.baseDir,
    verifiedAgainst: verify && exp ? { label: exp.manifest.label, how: exp.how, detectedFrom: exp.detectedFrom ?? null } : null,
    files,
    ignored: plan.ignored,
    totals,
    exitCode: totals.mismatch + totals.missing > 0 ? 1 : 0,
  };
}
