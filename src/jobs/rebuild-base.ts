/**
 * The rebuild-base job: the exact 2023 base conversion written to disk from LLaMA in another layout,
 * each file judged by the base's published digests (or --manifest), atomic, resumable and locked
 * as a decode is, because it is run as one.
 */
import { performance } from 'node:perf_hooks';
import { planRebuildBase, type RebuildBaseOptions } from '../plan/rebuild-base.js';
import { runPlan, type DecodeEvent, type DecodeReport } from './decode.js';
import { checkOptions, COMMON_OPTIONS } from './options.js';
import { Pipeline } from '../codec/pipeline.js';
import { InputError } from '../errors.js';
import type { DecodePlan } from '../plan/plan.js';
import { checkMetaFiles } from '../verify/meta-checklist.js';
import { bytesMatch } from '../verify/digests.js';

export interface RebuildBaseJobOptions extends RebuildBaseOptions {
  force?: boolean;
  jobs?: number;
  /** Any file not verified makes the exit code 1. */
  strict?: boolean;
  spaceCheck?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: DecodeEvent) => void;
}

export async function rebuildBase(options: RebuildBaseJobOptions): Promise<DecodeReport> {
  checkOptions(options, { outputDir: 'string', source: 'string' }, {
    ...COMMON_OPTIONS,
    as: 'string',
    manifest: 'string',
    force: 'boolean',
    jobs: 'jobs',
    strict: 'boolean',
    spaceCheck: 'boolean',
  });
  const started = performance.now();
  const plan = await planRebuildBase(options, (data, expected) => bytesMatch(expected, data));
  await checkOriginals(plan, options.signal);
  // A source that is not the LLaMA wanted fails every shard alike: the first failure stops the run.
  return runPlan(plan, { ...options, keepGoing: false }, undefined, started);
}

/**
 * Meta's checklist.chk, where no digest will judge a rebuilt shard: it is then the only proof, so
 * the originals are hashed first and a damaged one stops the run (exit 2). With digests for every
 * shard it is read only when one fails, to name the damaged original.
 */
async function checkOriginals(plan: DecodePlan, signal: AbortSignal | undefined): Promise<void> {
  const shard = plan.files.find((f) => f.payloadRebuild?.kind === 'shard')?.payloadRebuild;
  if (shard?.kind !== 'shard' || shard.origin.kind !== 'meta' || shard.folder.local === undefined) return;
  if (plan.files.every((f) => f.payloadRebuild?.kind !== 'shard' || f.expected.length > 0)) return;
  const pipeline = new Pipeline();
  try {
    const lines = await checkMetaFiles(pipeline, shard.folder.local, shard.origin, { signal });
    const damaged = lines.find((d) => d.code === 'base-not-published');
    if (damaged) throw new InputError(damaged.message, { hint: 'the rebuilt files could not be verified otherwise' });
    for (const line of lines) plan.notes.push(line.message.replace(/: Meta's files are intact.*$/, ": Meta's files are intact"));
  } finally {
    await pipeline.close();
  }
}
