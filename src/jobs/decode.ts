/**
 * The decode job: plan, then for each file stream payload XOR base into a temporary file while
 * hashing it, compare with the published digest, and only then give it its final name.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { baseAlgorithmsFor, diagnoseFailure, judgeBase } from '../verify/diagnose.js';
import { findMatch, primaryAlgorithm } from '../verify/digests.js';
import { InputError, InterruptedError, MetharmeXorError, WriteError } from '../errors.js';
import { formatBytes } from '../format.js';
import { acquireLock } from '../output/lock.js';
import type { Algorithm, Diagnosis, Digests, FileStatus } from '../types.js';
import {
  commitTemp,
  createTemp,
  discardTemp,
  lstatOrUndefined,
  prepareOutputDir,
  stateDir,
  tidyOutputDir,
  type TempFile,
} from '../output/temp-file.js';
import { peakRssBytes } from '../memory.js';
import { Pipeline } from '../codec/pipeline.js';
import { planDecode, type DecodePlan, type FileAction, type FilePlan, type PlanOptions } from '../plan/plan.js';
import { checkDecodedHead, type SanityProblem } from '../verify/sanity.js';
import { FileSource, GzipSource, type ByteSource } from '../codec/sources.js';
import { freeBytes, requireFreeSpace } from '../output/space.js';
import { ResumeState } from '../output/state.js';
import { describeExpected } from '../verify/digests.js';
import { checkFile, matchWithFallback } from '../verify/hash-file.js';


export interface BaseCheck {
  /** published: the base file is the published conversion; not-published: it is not; unknown: no digest. */
  status: 'published' | 'not-published' | 'unknown';
  digests: Digests;
}

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
  /** Why the file failed and what to do, when it failed. */
  diagnosis: Diagnosis[];
  /** With --check-base: whether the base file is the published conversion. */
  baseCheck: BaseCheck | null;
}

export interface DecodeReport {
  outputDir: string;
  xorDir: string;
  baseDir: string;
  verifiedAgainst: { label: string; how: 'model' | 'manifest' | 'xor-folder' | 'detected'; detectedFrom: string | null } | null;
  files: FileResult[];
  /** Everything the run warned about (also printed on stderr). */
  warnings: string[];
  ignored: string[];
  totals: {
    files: number;
    bytes: number;
    seconds: number;
    verified: number;
    mismatch: number;
    invalid: number;
    unverified: number;
    /** With --check-base: base files that are not the published conversion. */
    badBase: number;
    skipped: number;
    missing: number;
    /** Peak resident memory of this process so far (bytes): flat whatever the file sizes. */
    peakRssBytes: number;
  };
  /** 0 when every file was produced and verified (or verification was not asked for), else 1. */
  exitCode: 0 | 1;
}

/** decode: writing the output; check-existing: hashing an output already there; diagnose: hashing the base after a failure. */
export type FilePhase = 'decode' | 'check-existing' | 'diagnose';

export type DecodeEvent =
  | { type: 'plan'; plan: DecodePlan; totalBytes: number }
  | { type: 'warning'; message: string }
  | { type: 'file-start'; name: string; bytes: number; action: FileAction; phase: FilePhase }
  | { type: 'progress'; name: string; bytes: number }
  | { type: 'file-done'; result: FileResult };

export interface DecodeOptions extends PlanOptions {
  /** Hash outputs and compare with the manifest (default true). */
  verify?: boolean;
  /** Replace existing outputs instead of checking them (default false). */
  force?: boolean;
  /** Files decoded at once (default: from the number of cores). */
  jobs?: number;
  /** Also hash every base file while decoding and compare it with the published conversion. */
  checkBase?: boolean;
  /** Refuse to start when the output file system lacks the space (default true). */
  spaceCheck?: boolean;
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
  checkBase: boolean;
  /** The base conversion the release was made against, when the release is known. */
  releaseBase: string | undefined;
  diagnoseState: { badBaseSeen: boolean };
  state: ResumeState;
  signal: AbortSignal;
  emit: (event: DecodeEvent) => void;
}

function statePaths(file: FilePlan) {
  return { output: file.outputPath, payload: file.payloadPath, base: file.basePath };
}

/** Thrown from the pipeline's head inspection to stop a file whose first bytes cannot be right. */
class StopFile extends Error {}

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
    diagnosis: [],
    baseCheck: null,
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
  // Written by an earlier run and untouched since (output and inputs): no need to read it again.
  const recorded = await ctx.state.unchanged(file.name, statePaths(file));
  if (recorded) {
    const match = findMatch(file.expected, recorded.digests);
    if (ctx.verify && match) {
      return {
        ...baseResult(file),
        bytes: recorded.output.size,
        algorithm: match.algorithm,
        actual: match.digest,
        matchedSource: match.source,
        status: 'skipped',
        note: 'verified by an earlier run, unchanged since',
        seconds: (performance.now() - t0) / 1000,
      };
    }
    if (!ctx.verify || file.expected.length === 0) {
      return {
        ...baseResult(file),
        bytes: recorded.output.size,
        algorithm: null,
        status: 'skipped',
        note: 'decoded by an earlier run, unchanged since; not verified',
        seconds: (performance.now() - t0) / 1000,
      };
    }
  }
  if (!ctx.verify || file.expected.length === 0) {
    throw new InputError('already exists and cannot be checked (no published digest)', {
      file: file.outputPath,
      hint: 'use --force to overwrite it',
    });
  }
  ctx.emit({ type: 'file-start', name: file.name, bytes: existing.size, action: file.action, phase: 'check-existing' });
  const outcome = await checkFile(pipeline, file.outputPath, file.expected, {
    signal: ctx.signal,
    onBytes: (bytes) => ctx.emit({ type: 'progress', name: file.name, bytes }),
  });
  if (outcome.match) await ctx.state.record(file.name, statePaths(file), outcome.digests);
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

async function diagnose(file: FilePlan, pipeline: Pipeline, ctx: Context, baseDigests: Digests | undefined): Promise<Diagnosis[]> {
  ctx.emit({ type: 'file-start', name: file.name, bytes: file.baseSize ?? 0, action: file.action, phase: 'diagnose' });
  return diagnoseFailure(file, {
    pipeline,
    releaseBase: ctx.releaseBase,
    baseDigests,
    state: ctx.diagnoseState,
    hash: { signal: ctx.signal, onBytes: (bytes) => ctx.emit({ type: 'progress', name: file.name, bytes }) },
  });
}

function checkBase(file: FilePlan, digests: Digests, ctx: Context): BaseCheck | null {
  if (!ctx.checkBase || !file.basePath) return null;
  const verdict = judgeBase(file, digests, ctx.releaseBase);
  if (!verdict) return { status: 'unknown', digests };
  return { status: verdict.code === 'base-is-published' ? 'published' : 'not-published', digests };
}

async function decodeFile(file: FilePlan, pipeline: Pipeline, ctx: Context): Promise<FileResult> {
  const t0 = performance.now();
  const kept = await checkExisting(file, pipeline, ctx, t0);
  if (kept) return kept;

  ctx.emit({ type: 'file-start', name: file.name, bytes: file.payloadSize, action: file.action, phase: 'decode' });
  const primary = ctx.verify ? primaryAlgorithm(file.expected) : undefined;
  const baseAlgorithms = ctx.checkBase && file.basePath ? baseAlgorithmsFor(file.name, ctx.releaseBase) : [];
  const knownSize = file.action === 'xor-gzip' ? undefined : file.payloadSize;
  ctx.state.forget(file.name);
  const temp: TempFile = await createTemp(ctx.plan.outputDir, file.name, { direct: pipeline.directAligned });
  let committed = false;
  try {
    const source = await openSource(file);
    let base: ByteSource | undefined;
    let streamed;
    let problem: SanityProblem | undefined;
    try {
      base = file.basePath ? await FileSource.open(file.basePath) : undefined;
      streamed = await pipeline.run({
        source,
        base,
        output: temp,
        algorithms: primary ? [primary] : [],
        baseAlgorithms,
        signal: ctx.signal,
        // Plain copies are the published bytes themselves; decoded ones must look like their kind.
        inspectHead:
          file.action === 'copy'
            ? undefined
            : (head) => {
                problem = checkDecodedHead(file.name, head, knownSize);
                if (problem) throw new StopFile(problem.message);
              },
        onBytes: (bytes) => ctx.emit({ type: 'progress', name: file.name, bytes }),
      });
    } catch (err) {
      if (!(err instanceof StopFile)) throw err;
    } finally {
      await source.close();
      await base?.close();
    }
    if (problem || !streamed) {
      await discardTemp(temp);
      const stopped: Diagnosis = {
        code: problem!.code,
        message: `${file.name}: ${problem!.message}, so the base does not match the one the XOR files were made against; the file was stopped at its first chunk`,
      };
      return {
        ...baseResult(file),
        status: 'invalid',
        diagnosis: [stopped, ...(await diagnose(file, pipeline, ctx, undefined))],
        seconds: (performance.now() - t0) / 1000,
      };
    }
    if (knownSize !== undefined && streamed.bytes !== knownSize) {
      throw new InputError(`changed size while being read (${knownSize} -> ${streamed.bytes} bytes)`, {
        file: file.payloadPath,
        hint: 'make sure no other program is writing the XOR files, then run again',
      });
    }
    const baseExpected = file.basePath && knownSize !== undefined ? Math.min(knownSize, file.baseSize ?? 0) : undefined;
    if (baseExpected !== undefined && streamed.baseBytes !== baseExpected) {
      throw new InputError(`changed size while being read (${file.baseSize} bytes planned, ${streamed.baseBytes} read)`, {
        file: file.basePath,
        hint: 'make sure no other program is writing the base files, then run again',
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
    let diagnosis: Diagnosis[] = [];
    if (status === 'mismatch') {
      await discardTemp(temp);
      diagnosis = await diagnose(file, pipeline, ctx, baseAlgorithms.length > 0 ? streamed.baseDigests : undefined);
    } else {
      await commitTemp(temp);
      committed = true;
      await ctx.state.record(file.name, statePaths(file), outcome.digests);
    }
    const shown = outcome.match?.algorithm ?? primary ?? null;
    return {
      ...baseResult(file),
      bytes: streamed.bytes,
      algorithm: shown,
      actual: shown ? (outcome.digests[shown] ?? null) : null,
      matchedSource: outcome.match?.source ?? null,
      status,
      diagnosis,
      baseCheck: checkBase(file, streamed.baseDigests, ctx),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    if (!committed) await discardTemp(temp);
  }
}

/** Bytes still to write: outputs that exist are checked and kept, unless --force replaces them. */
async function bytesToWrite(plan: DecodePlan, force: boolean): Promise<number> {
  let total = 0;
  for (const f of plan.files) {
    const existing = await lstatOrUndefined(f.outputPath);
    if (!force && existing?.isFile()) continue;
    total += f.payloadSize;
  }
  return total;
}

export async function decode(options: DecodeOptions): Promise<DecodeReport> {
  const started = performance.now();
  const warnings: string[] = [];
  const emit = (event: DecodeEvent) => {
    if (event.type === 'warning') warnings.push(event.message);
    options.onEvent?.(event);
  };
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
  if (options.spaceCheck !== false) await requireFreeSpace(plan.outputDir, await bytesToWrite(plan, options.force === true));
  await prepareOutputDir(plan.outputDir);
  const lock = await acquireLock(plan.outputDir);
  try {
    if (lock.tookOverFrom) {
      const t = lock.tookOverFrom;
      emit({ type: 'warning', message: `took over the lock left by process ${t.pid} (started ${t.started}), which no longer exists` });
    }
    return { ...(await decodeLocked(plan, options, emit, verify, started)), warnings };
  } finally {
    await lock.release();
    await tidyOutputDir(plan.outputDir);
  }
}

/** Turns "disk full" into the numbers the user needs: what was still to write, and what is free. */
async function withSpaceNeeded(err: unknown, plan: DecodePlan, unfinished: readonly FilePlan[]): Promise<unknown> {
  const code = ((err as MetharmeXorError).cause as NodeJS.ErrnoException | undefined)?.code;
  if (!(err instanceof WriteError) || (code !== 'ENOSPC' && code !== 'EDQUOT')) return err;
  const needed = unfinished.reduce((sum, f) => sum + f.payloadSize, 0);
  const free = await freeBytes(plan.outputDir);
  return new WriteError(
    `${err.message}: ${formatBytes(needed)} were still to write${free === undefined ? '' : `, ${formatBytes(free)} free now`}`,
    { file: err.file, hint: err.hint, cause: err.cause },
  );
}

async function decodeLocked(
  plan: DecodePlan,
  options: DecodeOptions,
  emit: (event: DecodeEvent) => void,
  verify: boolean,
  started: number,
): Promise<Omit<DecodeReport, 'warnings'>> {
  const internal = new AbortController();
  const onExternalAbort = () => internal.abort(options.signal?.reason);
  if (options.signal?.aborted) onExternalAbort();
  options.signal?.addEventListener('abort', onExternalAbort);
  const ctx: Context = {
    plan,
    verify,
    force: options.force === true,
    checkBase: options.checkBase === true,
    releaseBase: plan.expectations?.model?.base,
    diagnoseState: { badBaseSeen: false },
    state: await ResumeState.load(plan.outputDir),
    signal: internal.signal,
    emit,
  };
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
  if (firstError !== undefined) throw await withSpaceNeeded(firstError, plan, plan.files.filter((_, i) => !results[i]));

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
      diagnosis: [],
      baseCheck: null,
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
    invalid: count('invalid'),
    unverified: count('unverified'),
    badBase: files.filter((f) => f.baseCheck?.status === 'not-published').length,
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
    exitCode: totals.mismatch + totals.invalid + totals.missing + totals.badBase > 0 ? 1 : 0,
  };
}
