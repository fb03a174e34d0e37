/**
 * Hashing files through the pipeline and matching them with published digests. Used by decode (an
 * output already in place), verify, check-base, encode and diagnosis.
 */
import { Pipeline } from '../codec/pipeline.js';
import { FileSource } from '../codec/sources.js';
import type { ManifestEntry } from '../release/manifest.js';
import type { Algorithm, Digests } from '../types.js';
import { findMatch, otherAlgorithms, primaryAlgorithm } from './digests.js';

export interface HashOptions {
  signal?: AbortSignal | undefined;
  onBytes?: ((bytes: number) => void) | undefined;
}

export async function hashFile(
  pipeline: Pipeline,
  path: string,
  algorithms: readonly Algorithm[],
  options: HashOptions = {},
): Promise<{ bytes: number; digests: Digests }> {
  const source = await FileSource.open(path);
  try {
    const { bytes, digests } = await pipeline.run({ source, algorithms, signal: options.signal, onBytes: options.onBytes });
    return { bytes, digests };
  } finally {
    await source.close();
  }
}

export interface MatchOutcome {
  digests: Digests;
  match: ManifestEntry | undefined;
}

/**
 * Completes `computed` with the other published algorithms when nothing matched yet. The file is read
 * again only in that failure case, so the common path costs one hash of one algorithm.
 */
export async function matchWithFallback(
  pipeline: Pipeline,
  path: string,
  expected: readonly ManifestEntry[],
  computed: Digests,
  options: HashOptions = {},
): Promise<MatchOutcome> {
  let match = findMatch(expected, computed);
  if (match) return { digests: computed, match };
  const others = otherAlgorithms(expected, computed);
  if (others.length === 0) return { digests: computed, match: undefined };
  const more = await hashFile(pipeline, path, others, options);
  const digests = { ...computed, ...more.digests };
  match = findMatch(expected, digests);
  return { digests, match };
}

/** Hashes `path` and matches it with any of the published digests. */
export async function checkFile(
  pipeline: Pipeline,
  path: string,
  expected: readonly ManifestEntry[],
  options: HashOptions = {},
): Promise<MatchOutcome & { bytes: number }> {
  const primary = primaryAlgorithm(expected);
  if (!primary) return { digests: {}, match: undefined, bytes: 0 };
  const first = await hashFile(pipeline, path, [primary], options);
  const outcome = await matchWithFallback(pipeline, path, expected, first.digests, options);
  return { ...outcome, bytes: first.bytes };
}
