/**
 * The decode job: plan, take the output folder's lock, run the per-file job over the files in a few
 * lanes, and sum up. The per-file work is decode-file.ts's; the result shapes are results.ts's.
 */
import { performance } from 'node:perf_hooks';
import { Pipeline } from '../codec/pipeline.js';
import { pipelineSizing } from '../codec/stream-job.js';
import { interruptedBy, InterruptedError, MetharmeXorError, throwIfInterrupted, WriteError } from '../errors.js';
import { formatBytes } from '../format.js';
import { peakRssBytes } from '../memory.js';
import { acquireLock } from '../output/lock.js';
import { freeBytes, requireFreeSpace } from '../output/space.js';
import { ResumeState } from '../output/state.js';
import { lstatOrUndefined, prepareOutputDir, removeStaleFiles, stateDir, tidyOutputDir } from '../output/temp-file.js';
import { refuseForeignOutputs } from './output-ownership.js';
import { planDecode, type DecodePlan, type FilePlan, type PlanOptions } from '../plan/plan.js';
import { entriesByName } from '../release/manifest.js';
import type { FileStatus } from '../types.js';
import { decodeFile, type RunContext } from './decode-file.js';
import { templateInPlace, writeChatTemplate } from './chat-template.js';
import { CHAT_TEMPLATE_FILE } from '../release/prompt-format.js';
import { checkOptions, COMMON_OPTIONS, defaultJobs } from './options.js';
import { missingResult, notStartedResult, type DecodeEvent, type DecodeReport, type FileResult } from './results.js';

export type { BaseCheck, DecodeEvent, DecodeReport, FilePhase, FileResult } from './results.js';

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
  /**
   * Decode every file even after one failed because of its base or for a reason no evidence decides
   * (default false: such a failure stops the run from starting more files, which are `not-started`).
   */
  keepGoing?: boolean;
  /** Any file not verified (no digest known, not covered by the manifest, --no-verify) makes the exit code 1. */
  strict?: boolean;
  /** Keep files whose pickle references globals outside torch's weights-only allowlist (default false: they are `unsafe`, not kept). */
  allowUnsafePickle?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: DecodeEvent) => void;
}

/** How a plan is run: everything a decode is asked except what planning used. */
export type RunOptions = Omit<DecodeOptions, keyof PlanOptions>;

/** Missing files named one by one in warnings; the rest are counted (all are in the report). */
const MISSING_NAMED = 20;

async function loadGgufRoom() {
  const [{ decodeIntoGguf }, { dropKeptGguf }, { mainGgmlType }, { warmConversions }] = await Promise.all([
    import('./gguf-decode.js'),
    import('./gguf-resume.js'),
    import('../output/gguf-llama.js'),
    import('../output/convert-pool.js'),
  ]);
  return { decodeIntoGguf, dropKeptGguf, mainGgmlType, warmConversions };
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
  checkOptions(options, { outputDir: 'string', xorDir: 'string', baseDir: 'string' }, {
    ...COMMON_OPTIONS,
    model: 'string',
    manifest: 'string',
    xorManifest: 'string',
    baseManifest: 'string',
    verify: 'boolean',
    force: 'boolean',
    jobs: 'jobs',
    checkBase: 'boolean',
    spaceCheck: 'boolean',
    keepGoing: 'boolean',
    strict: 'boolean',
    allowUnsafePickle: 'boolean',
    safetensors: 'boolean',
    gguf: 'string',
    chatTemplate: 'boolean',
  });
  const started = performance.now();
  const events = collectEvents(options.onEvent);
  const plan = await planDecode(options, options.signal);
  return runPlan(plan, options, events, started);
}

/** Warnings and notes kept for the report as they are passed on. */
function collectEvents(onEvent: ((event: DecodeEvent) => void) | undefined) {
  const warnings: string[] = [];
  const notes: string[] = [];
  const notify = (event: DecodeEvent) => {
    if (event.type === 'warning') warnings.push(event.message);
    if (event.type === 'note') notes.push(event.message);
    onEvent?.(event);
  };
  return { warnings, notes, notify };
}

/**
 * Runs a plan made by planDecode or planRebuildBase: warns about what will not be verified, takes
 * the output folder, writes and judges every file, and sums up.
 */
export async function runPlan(plan: DecodePlan, options: RunOptions, events = collectEvents(options.onEvent), started = performance.now()): Promise<DecodeReport> {
  const { warnings, notes, notify } = events;
  const verifying = options.verify !== false;
  const totalBytes = plan.files.reduce((sum, f) => sum + f.payloadSize, 0);
  notify({ type: 'plan', plan, totalBytes });
  for (const note of plan.notes) notify({ type: 'warning', message: note });
  if (verifying && !plan.expectations) {
    notify({
      type: 'warning',
      safety: true,
      message:
        plan.nothingVerified ?? 'NOTHING WILL BE VERIFIED: no release recognised from the paths; pass --model <name> or --manifest <file>',
    });
  }
  if (verifying && plan.expectations) {
    for (const f of plan.files.filter((x) => x.expected.length === 0)) {
      notify({ type: 'warning', safety: true, message: `${f.name}: not listed in ${plan.expectations.manifest.label}; it will be ${plan.verb === 'rebuilding' ? 'rebuilt' : 'decoded'} but NOT VERIFIED` });
    }
  }
  // A manifest of a larger release can list thousands of absent names: name a few, count the rest.
  for (const name of plan.missing.slice(0, MISSING_NAMED)) {
    notify({
      type: 'warning',
      safety: true,
      message: `${name}: listed in ${plan.expectations?.manifest.label} but not in the XOR folder ${plan.xorDir}; download it, or the output will be incomplete`,
    });
  }
  if (plan.missing.length > MISSING_NAMED) {
    notify({ type: 'warning', safety: true, message: `and ${plan.missing.length - MISSING_NAMED} more names listed in ${plan.expectations?.manifest.label} are not in the XOR folder` });
  }
  await refuseForeignOutputs(plan, { force: options.force === true, verifying });
  // Before the decode rather than after it: a template in the way costs nothing then.
  if (plan.chatTemplate) await templateInPlace(plan.outputDir, options.force === true);
  if (options.spaceCheck !== false) await requireFreeSpace(plan.outputDir, await bytesToWrite(plan, options.force === true));
  throwIfInterrupted(options.signal);
  await prepareOutputDir(plan.outputDir);
  const lock = await acquireLock(plan.outputDir);
  try {
    const resume = await ResumeState.load(plan.outputDir);
    // What an interrupted run kept to resume inside a Hub file is not stale.
    await removeStaleFiles(plan.outputDir, resume.keptTemps());
    if (lock.tookOverFrom) {
      const t = lock.tookOverFrom;
      notify({
        type: 'warning',
        message: t.pid === 0 ? 'took over a lock file that was empty or damaged (a run cut off while writing it)' : `took over the lock left by process ${t.pid} (started ${t.started}), which no longer exists`,
      });
    }
    return { ...(await decodeLocked(plan, resume, options, notify, verifying, started)), warnings, notes };
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

/** A failure that will repeat for every other file: the base is wrong, or nothing tells what is. */
function stopsTheRun(result: FileResult): boolean {
  return (result.status === 'mismatch' || result.status === 'invalid') && (result.cause === 'base' || result.cause === 'unknown');
}

async function decodeLocked(
  plan: DecodePlan,
  resume: ResumeState,
  options: RunOptions,
  notify: (event: DecodeEvent) => void,
  verifying: boolean,
  started: number,
): Promise<Omit<DecodeReport, 'warnings' | 'notes'>> {
  const internal = new AbortController();
  const onExternalAbort = () => internal.abort(options.signal?.reason);
  if (options.signal?.aborted) onExternalAbort();
  options.signal?.addEventListener('abort', onExternalAbort);
  const ctx: RunContext = {
    plan,
    verifying,
    force: options.force === true,
    checkingBase: options.checkBase === true,
    allowUnsafePickle: options.allowUnsafePickle === true,
    evidence: { badBaseSeen: false },
    resume,
    signal: internal.signal,
    notify,
  };
  const results: FileResult[] = new Array(plan.files.length);
  let stopped = false;
  let firstError: unknown;
  /**
   * A pipeline a lane left for the next run of files (decode --gguf runs the small files, then the
   * shards): the shards start with its hash worker up, not with a new one starting while the last
   * one stops (10-25 ms here, before the first shard).
   */
  const idle: Pipeline[] = [];
  /** Decodes the files at `indices` in a few lanes; what failed is in firstError. `keep`: leave one pipeline in `idle`. */
  const runFiles = async (indices: number[], keep = false) => {
    let next = 0;
    const lane = async () => {
      const fromNetwork = plan.source !== undefined || plan.baseSource !== undefined;
      const converting = plan.files.some((f) => f.convert === 'gguf' || f.convert === 'safetensors');
      const pipeline = idle.pop() ?? new Pipeline({ outputDir: stateDir(plan.outputDir), ...pipelineSizing(fromNetwork, converting) });
      try {
        while (next < indices.length && !internal.signal.aborted && !stopped) {
          const index = indices[next++]!;
          const result = await decodeFile(plan.files[index]!, pipeline, ctx);
          results[index] = result;
          if (plan.files[index]!.convert === 'gguf' && result.status !== 'verified' && result.status !== 'unverified') ctx.gguf?.shardFailed();
          if (stopsTheRun(result) && options.keepGoing !== true) stopped = true;
          notify({ type: 'file-done', result });
        }
      } catch (err) {
        // The first failure is the one to report; the lanes it stops throw InterruptedError after it.
        if (firstError === undefined) firstError = err;
        else if (firstError instanceof InterruptedError && !(err instanceof InterruptedError)) firstError = err;
        internal.abort('failed');
      } finally {
        if (keep && firstError === undefined && idle.length === 0) idle.push(pipeline);
        else await pipeline.close();
      }
    };
    const jobs = Math.max(1, Math.min(options.jobs ?? defaultJobs(), indices.length || 1));
    await Promise.all(Array.from({ length: jobs }, lane));
  };
  // With --gguf, the small files first: config.json, tokenizer.model and the index lay the GGUF out.
  const intoGguf = plan.files.flatMap((f, i) => (f.convert === 'gguf' ? [i] : []));
  // The GGUF writer is loaded only by a run that writes or drops one: a plain decode starts sooner.
  const ggufRoom = intoGguf.length > 0 || ctx.resume.ggufEntry() ? await loadGgufRoom() : undefined;
  // A type asked by name is known now: its conversion threads start while the small files go.
  if (ggufRoom && intoGguf.length > 0 && plan.gguf && plan.gguf !== 'auto') ggufRoom.warmConversions(ggufRoom.mainGgmlType(plan.gguf));
  let gguf: DecodeReport['gguf'] = null;
  try {
    await runFiles(plan.files.flatMap((f, i) => (f.convert === 'gguf' ? [] : [i])), intoGguf.length > 0);
    if (intoGguf.length === 0) await ggufRoom?.dropKeptGguf(plan.outputDir, ctx);
    else if (ggufRoom && firstError === undefined && !stopped && !internal.signal.aborted) {
      gguf = await ggufRoom.decodeIntoGguf(plan, ctx, { force: options.force === true, shards: intoGguf, results }, async (indices) => {
        await runFiles(indices);
        return firstError === undefined;
      });
    }
  } finally {
    await Promise.all(idle.splice(0).map((p) => p.close()));
  }
  options.signal?.removeEventListener('abort', onExternalAbort);
  if (firstError !== undefined) throw await withSpaceNeeded(firstError, plan, plan.files.filter((_, i) => !results[i]));
  // Stopped by a signal between files: an interrupted run, unless every file finished anyway.
  if (options.signal?.aborted && results.filter(Boolean).length < plan.files.length) throw interruptedBy(options.signal);

  // Added beside the outputs when asked, whatever became of them: it is not one of the release's files.
  const added = plan.chatTemplate ? [{ name: CHAT_TEMPLATE_FILE, status: await writeChatTemplate(plan.outputDir, options.force === true) }] : [];
  for (const a of added) notify({ type: 'note', message: a.status === 'written' ? `added ${a.name}: the Metharme prompt format, where transformers reads a chat template` : `${a.name}: already present with the Metharme prompt format` });
  const files = plan.files.map((file, i) => {
    if (results[i]) return results[i]!;
    const result = notStartedResult(file);
    notify({ type: 'file-done', result });
    return result;
  });
  const expectedByName = entriesByName(plan.expectations?.manifest.entries ?? []);
  for (const name of plan.missing) {
    const result = missingResult(expectedByName, name);
    files.push(result);
    notify({ type: 'file-done', result });
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
    notStarted: count('not-started'),
    unsafe: count('unsafe'),
    notVerified: files.filter((f) => f.status === 'unverified' || (f.status === 'skipped' && f.matchedSource === null)).length,
    peakRssBytes: peakRssBytes(),
  };
  const exp = plan.expectations;
  return {
    outputDir: plan.outputDir,
    xorDir: plan.xorDir,
    baseDir: plan.baseDir,
    verifiedAgainst: verifying && exp ? { label: exp.manifest.label, how: exp.how, detectedFrom: exp.detectedFrom ?? null } : null,
    source: plan.source ?? null,
    baseSource: plan.baseSource ?? null,
    baseRebuild: plan.baseRebuild ?? null,
    gguf,
    files,
    ignored: plan.ignored,
    added,
    totals,
    strict: options.strict === true,
    exitCode:
      totals.mismatch + totals.invalid + totals.missing + totals.badBase + totals.notStarted + totals.unsafe + (options.strict ? totals.notVerified : 0) > 0 || (gguf !== null && !gguf.written) ? 1 : 0,
  };
}
