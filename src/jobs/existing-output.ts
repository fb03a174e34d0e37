/** An output already in place: kept when it verifies (or a run of ours vouches for it), never silently overwritten. */
import type { Pipeline } from '../codec/pipeline.js';
import { InputError } from '../errors.js';
import { lstatOrUndefined } from '../output/temp-file.js';
import { foreignOutputs } from '../plan/inputs.js';
import type { FilePlan } from '../plan/plan.js';
import { findMatch } from '../verify/digests.js';
import { checkFile } from '../verify/hash-file.js';
import { judgePickle, PickleCheck } from '../verify/pickle-check.js';
import type { FileResult } from './results.js';
import { resultOf, resumePaths, type RunContext } from './run-context.js';

/** An output already in place is kept when it verifies, and is never silently overwritten. */
export async function checkExisting(file: FilePlan, pipeline: Pipeline, ctx: RunContext, t0: number): Promise<FileResult | undefined> {
  const existing = await lstatOrUndefined(file.outputPath);
  // A symlink is not our output: it is replaced, and its target is never written through.
  if (!existing || existing.isSymbolicLink()) return undefined;
  if (existing.isDirectory()) {
    throw new InputError('is a folder where an output file must go', { file: file.outputPath, hint: 'move it away' });
  }
  if (ctx.force) return undefined;
  // Written by an earlier run and untouched since (output and inputs): no need to read it again.
  const recorded = await ctx.resume.unchanged(file.name, resumePaths(file));
  if (recorded) {
    const match = findMatch(file.expected, recorded.digests);
    if (ctx.verifying && match) {
      return resultOf(file, t0, { status: 'skipped', bytes: recorded.output.size, digests: recorded.digests, match }, {
        note: 'verified by an earlier run, unchanged since',
      });
    }
    if (!ctx.verifying || file.expected.length === 0) {
      return resultOf(file, t0, { status: 'skipped', bytes: recorded.output.size }, {
        note: 'decoded by an earlier run, unchanged since; not verified',
      });
    }
  }
  if (file.convert) {
    // Its digest is the .bin's, which is not stored: only the resume state can vouch for a conversion.
    throw new InputError(`already exists and cannot be checked: it was converted from ${file.name}, whose digest is the published one, and no state of that run is left`, {
      file: file.outputPath,
      hint: 'use --force to convert it again',
    });
  }
  if (!ctx.verifying || file.expected.length === 0) {
    throw new InputError('already exists and cannot be checked (no published digest)', {
      file: file.outputPath,
      hint: 'use --force to overwrite it',
    });
  }
  ctx.notify({ type: 'file-start', name: file.name, bytes: existing.size, action: file.action, phase: 'check-existing' });
  const pickles = new PickleCheck(file.name, existing.size);
  const outcome = await checkFile(pipeline, file.outputPath, file.expected, {
    signal: ctx.signal,
    onBytes: (bytes) => ctx.notify({ type: 'progress', name: file.name, bytes }),
    onChunk: (data) => pickles.feed(data),
  });
  if (!outcome.match && !ctx.resume.wrote(file.name)) throw foreignOutputs(ctx.plan.outputDir, [file.name]);
  if (!outcome.match) {
    throw new InputError(`already exists and does not match ${ctx.plan.expectations?.manifest.label ?? 'the manifest'}`, {
      file: file.outputPath,
      hint: 'use --force to replace it',
    });
  }
  const safety = judgePickle(file.name, pickles.finish(), ctx.allowUnsafePickle);
  if (safety && !safety.kept) {
    // Not ours to delete (an earlier run may have kept it on request), but never reported as fine.
    return resultOf(file, t0, { status: safety.status, bytes: outcome.bytes, digests: outcome.digests, match: outcome.match, diagnosis: [safety.diagnosis] }, {
      note: 'already present; matches its digest, but is not safe to load',
    });
  }
  await ctx.resume.record(file.name, resumePaths(file), outcome.digests);
  return resultOf(file, t0, { status: 'skipped', bytes: outcome.bytes, digests: outcome.digests, match: outcome.match }, {
    note: 'already present and verified',
  });
}

