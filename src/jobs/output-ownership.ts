/**
 * Which existing outputs a decode may touch. An output folder is written only where this tool wrote
 * before (its state names the file) or where nothing is: a folder of someone else's files, an input
 * given first by mistake, is refused before anything is created in it, whatever the flags.
 */
import { createHash } from 'node:crypto';
import { lstat, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ResumeState } from '../output/state.js';
import { foreignOutputs } from '../plan/inputs.js';
import type { DecodePlan, FilePlan } from '../plan/plan.js';
import { findMatch, primaryAlgorithm } from '../verify/digests.js';

/** Files up to this size that someone else put where outputs go are checked before anything is written. */
const CHECK_FIRST_BYTES = 64 << 20;

/** Whether a small file matches its published digest; undefined when that cannot be told here. */
async function matchesNow(file: FilePlan, size: number): Promise<boolean | undefined> {
  const algorithm = primaryAlgorithm(file.expected);
  if (!algorithm || size > CHECK_FIRST_BYTES) return undefined;
  try {
    const digest = createHash(algorithm).update(await readFile(file.outputPath)).digest('hex');
    return findMatch(file.expected, { [algorithm]: digest }) !== undefined;
  } catch {
    // MD5 refused by a FIPS build, say: the file is checked later, as any output in place.
    return undefined;
  }
}

/**
 * Existing files at output paths that this tool did not write. Without --force one may stay when
 * it matches its published digest (small ones are checked here, large ones as any output in place);
 * with --force, with --no-verify, without a digest or when it does not match, nothing tells it from
 * an input's file, so the run stops before it writes anything.
 */
export async function refuseForeignOutputs(plan: DecodePlan, options: { force: boolean; verifying: boolean }): Promise<void> {
  const state = await ResumeState.load(plan.outputDir);
  const foreign: string[] = [];
  let decisive = false;
  for (const file of plan.files) {
    const info = await lstat(file.outputPath).catch(() => undefined);
    if (!info?.isFile() || state.wrote(file.name)) continue;
    foreign.push(basename(file.outputPath));
    if (options.force || !options.verifying || file.expected.length === 0 || file.convert || (await matchesNow(file, info.size)) === false) decisive = true;
  }
  if (decisive) throw foreignOutputs(plan.outputDir, foreign);
}
