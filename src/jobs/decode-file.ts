/**
 * The job for one file: check an output already in place, stream payload XOR base into a temporary
 * file while hashing it, judge it against the published digests, then commit it or diagnose why not.
 */
import { performance } from 'node:perf_hooks';
import type { Pipeline } from '../codec/pipeline.js';
import { FileSource, GzipSource, type ByteSource } from '../codec/sources.js';
import { InputError } from '../errors.js';
import { commitTemp, discardTemp, partialDir, type TempFile } from '../output/temp-file.js';
import { dropKeptOutput, finishedWith, keepForResume, openOutputTemp } from './hub-resume.js';
import { rewriteIndexForSafetensors } from './safetensors-index.js';
import type { FilePlan } from '../plan/plan.js';
import { openInput, openPayload } from './open-input.js';
import type { Digests } from '../types.js';
import { HubSource } from '../hub/hub-source.js';
import { baseVerdict, type Finding } from '../verify/diagnose.js';
import * as text from '../verify/diagnosis-text.js';
import { findMatch, primaryAlgorithm } from '../verify/digests.js';
import { CHECKPOINT_NAME, judgePickle, PickleCheck } from '../verify/pickle-check.js';
import { RecordCrcs } from '../release/record-crcs.js';
import { recordCrcsOf, tensorDiff } from '../verify/tensor-diff.js';
import { lacksBaseStructure, type SanityProblem } from '../release/file-structure.js';
import type { BaseCheck, FileResult } from './results.js';
import { checkExisting } from './existing-output.js';
import { crcsInline, decodedRecordCrcs, diagnose, tensorsOf } from './failed-file.js';
import { resultOf, resumePaths, type RunContext } from './run-context.js';

export type { RunContext } from './run-context.js';

/** Thrown from the pipeline's head inspection to stop a file whose first bytes cannot be right. */
class StopFile extends Error {}

/** An input whose size differs from the planned one changed while it was read: nothing it gave is trusted. */
async function requireUnchanged(source: ByteSource | undefined, planned: number | undefined, who: string): Promise<void> {
  if (!(source instanceof FileSource) || planned === undefined) return;
  const now = await source.sizeNow();
  if (now !== planned) {
    throw new InputError(`changed size while being read (${planned} bytes planned, ${now} now)`, {
      file: source.path,
      hint: `make sure no other program is writing the ${who} files, then run again`,
    });
  }
}

function baseCheckOf(file: FilePlan, digests: Digests, ctx: RunContext): BaseCheck | null {
  if (!ctx.checkingBase || !file.basePath) return null;
  const integrity = baseVerdict(file.name, digests, ctx.plan.inputDigests.base);
  return { status: integrity === 'intact' ? 'published' : integrity === 'differs' ? 'not-published' : 'unknown', digests };
}

/** The base's first bytes, to compare the decoded file's structure with (enough for a JSON config). */
async function baseHeadOf(file: FilePlan, chunkBytes: number, signal: AbortSignal): Promise<{ head: Buffer; size: number } | undefined> {
  if (!file.basePath || file.baseSize === undefined || file.action === 'copy') return undefined;
  const source = await openInput(file.basePath, file.baseSize, file.baseHub, signal, 0, file.baseRebuild);
  try {
    const head = Buffer.alloc(Math.min(file.baseSize, chunkBytes));
    return { head: head.subarray(0, await source.read(head, head.length)), size: file.baseSize };
  } finally {
    await source.close();
  }
}

const discard = async (temp: TempFile | undefined) => (temp ? discardTemp(temp) : undefined);

/** A file received corrupt on its first attempt: fetched once more, as `file` says. */
class FetchAgain {
  constructor(readonly file: FilePlan) {}
}

/**
 * A Hub payload whose SHA-256 differed from the listing is fetched once more. The second attempt
 * starts only once the first has ended: both write the same temporary file, and the first one's
 * clean-up must not run beside the second (it deleted the second's file before its commit).
 */
export async function decodeFile(file: FilePlan, pipeline: Pipeline, ctx: RunContext): Promise<FileResult> {
  for (let attempt = 1; ; attempt++) {
    const result = await decodeAttempt(file, pipeline, ctx, attempt);
    if (!(result instanceof FetchAgain)) return result;
    file = result.file;
  }
}

async function decodeAttempt(file: FilePlan, pipeline: Pipeline, ctx: RunContext, attempt: number): Promise<FileResult | FetchAgain> {
  const t0 = performance.now();
  // A shard going into the GGUF is never on disk: there is nothing in place to check.
  const existing = attempt === 1 && file.convert !== 'gguf' ? await checkExisting(file, pipeline, ctx, t0) : undefined;
  if (existing) return existing;

  ctx.notify({ type: 'file-start', name: file.name, bytes: file.payloadSize, action: file.action, phase: 'decode' });
  const primary = ctx.verifying ? primaryAlgorithm(file.expected) : undefined;
  const baseEntries = ctx.plan.inputDigests.base?.byName.get(file.name) ?? [];
  const baseAlgorithms = ctx.checkingBase && file.basePath ? [...new Set(baseEntries.map((e) => e.algorithm))] : [];
  const knownSize = file.action === 'xor-gzip' ? undefined : file.payloadSize;
  // Only a digest decides a file. Without one, the decoded bytes are refused only where they lack a
  // structure their base has; with --no-verify nothing is refused, a warning is all.
  const baseHead = primary ? undefined : await baseHeadOf(file, pipeline.chunkBytes, ctx.signal);
  // A blob in the local cache is named by its SHA-256: it is hashed as it is read, like a download.
  const fromCache = file.hub?.cached && file.hub.file.lfsSha256 && file.action !== 'xor-gzip' ? file.hub : undefined;
  ctx.resume.forget(file.name);
  // The rewritten index goes through the page cache; a safetensors file stages its own direct writes.
  const resumeCtx = { outputDir: ctx.plan.outputDir, resume: ctx.resume, verifying: ctx.verifying, notify: ctx.notify };
  // A shard going into the GGUF has no file of its own: its sink writes into the GGUF's.
  if (file.convert === 'gguf') await dropKeptOutput(file, resumeCtx);
  const out = file.convert === 'gguf' ? undefined : await openOutputTemp(file, resumeCtx, { direct: pipeline.directAligned && file.convert !== 'safetensors-index', mayResume: attempt === 1 });
  const temp = out?.temp;
  const kept = out?.kept ?? 0;
  const stages = pipeline.directAligned ? partialDir(ctx.plan.outputDir) : undefined;
  const sink = !temp
    ? ctx.gguf!.sink(file.name, file.payloadPath, stages, knownSize)
    : file.convert === 'safetensors'
      ? new (await import('../output/safetensors-sink.js')).SafetensorsSink(temp, file.payloadPath, stages, knownSize)
      : undefined;
  /** The file's own output where it has one, else its sink. */
  const output = sink ?? temp!;
  // A conversion keeps the .bin's directory once, for itself and the pickle check.
  const pickles = file.action === 'copy' ? undefined : new PickleCheck(file.name, knownSize, sink?.tail);
  // Each record's CRC-32 names the tensors that are wrong when the digest fails. Checked inline it
  // cost a quarter of a 1 GiB decode here (npm run bench), so a failed file is read once more before
  // it is discarded, or, for a conversion (whose zip is never on disk), decoded once more.
  const zipOut = pickles !== undefined && CHECKPOINT_NAME.test(file.name);
  const crcs = zipOut && sink && crcsInline(file) ? new RecordCrcs() : undefined;
  let committed = false;
  let keptForResume = false;
  /** A dropped partial record that no commit will save. */
  let unsaved = false;
  try {
    const source = await openPayload(file, ctx.signal, kept);
    let base: ByteSource | undefined;
    let written: ByteSource | undefined;
    let streamed;
    let decodedHead: Buffer | undefined;
    let lacking: SanityProblem | undefined;
    try {
      base = file.basePath ? await openInput(file.basePath, file.baseSize, file.baseHub, ctx.signal, 0, file.baseRebuild) : undefined;
      written = temp && kept > 0 ? await FileSource.open(temp.tempPath, { limit: kept }) : undefined;
      // A Hub payload's SHA-256 is taken on the pipeline's worker, beside the decode.
      const hubSource = source instanceof HubSource ? source.leaveHashing() : undefined;
      streamed = await pipeline.run({
        resume: written && { bytes: kept, written },
        sourceAlgorithms: hubSource || fromCache ? ['sha256'] : [],
        onWritten: out?.checkpoints && ((bytes) => out.checkpoints?.advance(bytes)),
        source,
        base,
        output,
        algorithms: primary ? [primary] : [],
        baseAlgorithms,
        signal: ctx.signal,
        inspectHead: (head) => {
          decodedHead = Buffer.from(head.subarray(0, Math.min(head.length, 1 << 20)));
          if (!baseHead) return;
          lacking = lacksBaseStructure(file.name, { head, size: knownSize }, baseHead);
          if (lacking && ctx.verifying) throw new StopFile(lacking.message);
        },
        onChunk: pickles
          ? (data) => {
              pickles.feed(data);
              crcs?.feed(data);
            }
          : undefined,
        onBytes: (bytes) => ctx.notify({ type: 'progress', name: file.name, bytes }),
      });
      if (streamed.sourceDigests.sha256) hubSource?.hashed(streamed.sourceDigests.sha256);
      await sink?.finish();
      await requireUnchanged(source, file.payloadSize, 'XOR');
      await requireUnchanged(base, file.baseSize, 'base');
    } catch (err) {
      if (!(err instanceof StopFile)) throw err;
    } finally {
      await source.close();
      await base?.close();
      await written?.close();
    }
    // From here the file ends (committed, refused or fetched again): nothing of it is to resume.
    const partialDropped = out ? await finishedWith(file, out, resumeCtx) : false;
    unsaved = partialDropped;
    if (!streamed) {
      await discard(temp);
      const finding = await diagnose(file, pipeline, ctx, { decodedHead });
      return resultOf(file, t0, { status: 'invalid', algorithm: primaryAlgorithm(file.expected), diagnosis: finding.diagnosis }, { cause: finding.cause });
    }
    if (lacking) ctx.notify({ type: 'warning', safety: true, message: text.unverifiedStructure(file.name, lacking) });
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
    // The Hub's listing gives each LFS file's SHA-256, computed here on the way: free evidence.
    const received = source instanceof GzipSource ? source.inner : source;
    const fetched = received instanceof HubSource ? received.integrity() : undefined;
    // A Hub base is checked the same way when it was read whole (as long as the payload, or --check-base).
    const baseFetched = base instanceof HubSource ? base.integrity() : undefined;
    const cacheBad = fromCache !== undefined && streamed.sourceDigests.sha256 !== fromCache.file.lfsSha256;
    const receivedBad = fetched === 'differs' || baseFetched === 'differs' || cacheBad;
    const which = cacheBad ? fromCache.cached : fetched === 'differs' ? file.payloadPath : file.basePath;
    // The published digest of the decoded file decides. The listing's digest of an input only
    // explains a failure, or decides alone when nothing is published for the file.
    const match = primary ? findMatch(file.expected, streamed.digests) : undefined;
    if (receivedBad && !match && attempt === 1) {
      await discard(temp);
      if (cacheBad) {
        // Never used again in this run: the retry downloads the file.
        fromCache.folder.cached.delete(file.name);
        ctx.notify({ type: 'warning', message: `${which}: this cached blob does not match the SHA-256 it is named by; ignoring it and downloading ${file.name}` });
        return new FetchAgain({ ...file, hub: { ...fromCache, cached: undefined } });
      }
      ctx.notify({ type: 'warning', message: `${which}: the bytes received do not match the SHA-256 the Hub lists; fetching it again` });
      return new FetchAgain(file);
    }
    if (receivedBad && match) {
      ctx.notify({ type: 'warning', message: `${which}: the bytes received do not match the SHA-256 the Hub lists, yet ${file.name} matches its published digest, so it is kept (the listing may be out of date)` });
    }
    const outcome = { digests: streamed.digests, match };
    const digestStatus = match ? 'verified' : primary || receivedBad ? 'mismatch' : 'unverified';
    // A wrong file is a mismatch first; a right (or unverifiable) one must also be harmless to load.
    const safety = digestStatus === 'mismatch' ? undefined : judgePickle(file.name, pickles?.finish(), ctx.allowUnsafePickle);
    if (safety?.kept === true) ctx.notify({ type: 'warning', safety: true, message: safety.diagnosis.message });
    const status = safety && !safety.kept ? safety.status : digestStatus;
    // A stream that did not convert is a corrupt payload's when the digest failed, else the file's own.
    if (sink?.refusal && status !== 'mismatch') throw sink.refusal;
    let finding: Finding | undefined;
    if (status !== 'verified' && status !== 'unverified') {
      const records = status !== 'mismatch' || !zipOut ? undefined : (crcs?.finish() ?? (sink || !temp ? await decodedRecordCrcs(file, pipeline, ctx.signal) : await recordCrcsOf(temp.tempPath, ctx.signal)));
      await discard(temp);
      if (status === 'mismatch') {
        finding = await diagnose(file, pipeline, ctx, {
          tensorFacts: records && tensorDiff(file.name, records, tensorsOf(pickles?.finish())),
          baseDigests: baseAlgorithms.length > 0 ? streamed.baseDigests : undefined,
          decodedHead,
          payload: fetched && fetched !== 'unknown' ? { integrity: fetched, source: 'the Hub\'s listing (checked while it was received)' } : undefined,
          baseReceivedCorrupt: baseFetched === 'differs',
        });
      }
    } else {
      if (!temp) {
        // Its bytes are in the GGUF, which gets its name once every shard is in.
        ctx.gguf!.shardDone(file.name, status === 'verified');
        if (status === 'verified') await (await import('./gguf-resume.js')).keepGgufShard(ctx.gguf!, file.name, { digests: streamed.digests, bytes: streamed.bytes }, ctx);
        committed = true;
        return resultOf(file, t0, { status, bytes: streamed.bytes, algorithm: primary, digests: outcome.digests, match: outcome.match, diagnosis: [] }, { cause: null });
      }
      if (file.convert === 'safetensors-index') await rewriteIndexForSafetensors(temp);
      // Recorded under the identity the file keeps through the rename: a kill in between leaves a
      // finished file that the next run recognises instead of refusing it.
      await commitTemp(temp, () => ctx.resume.record(file.name, { ...resumePaths(file), output: temp.tempPath }, outcome.digests));
      committed = true;
    }
    return resultOf(
      file,
      t0,
      { status, bytes: streamed.bytes, algorithm: primary, digests: outcome.digests, match: outcome.match, diagnosis: finding?.diagnosis ?? (safety ? [safety.diagnosis] : []) },
      { baseCheck: baseCheckOf(file, streamed.baseDigests, ctx), cause: finding?.cause ?? null, resumedAt: kept > 0 ? kept : null },
    );
  } catch (err) {
    // Cut off (a signal, a network that stays down, a full disk): a Hub file keeps what it has.
    if (!committed && out) keptForResume = await keepForResume(out).catch(() => false);
    throw err;
  } finally {
    if (!committed && !keptForResume) await discard(temp);
    if (unsaved && (!committed || file.convert === 'gguf')) await ctx.resume.save();
  }
}
