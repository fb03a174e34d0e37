/**
 * The rebuild-base job: the exact 2023 base conversion written to disk from LLaMA in another layout,
 * each file judged by the base's published digests (or --manifest), atomic, resumable and locked
 * as a decode is, because it is run as one.
 */
import { performance } from 'node:perf_hooks';
import { planRebuildBase, type RebuildBaseOptions } from '../plan/rebuild-base.js';
import { runPlan, type DecodeEvent, type DecodeReport } from './decode.js';
import { checkOptions, COMMON_OPTIONS } from './options.js';
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
  // A source that is not the LLaMA wanted fails every shard alike: the first failure stops the run.
  return runPlan(plan, { ...options, keepGoing: false }, undefined, started);
}
