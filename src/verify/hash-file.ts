/**
 * Hashing files through the pipeline and matching them with published digests. Used by decode (an
 * output already in place), verify, check-base, encode and diagnosis.
 */
import { Pipeline } from '../codec/pipeline.js';
import { FileSource } from '../codec/sources.js';
import type { ManifestEntry } from '../release/manifest.js';
import type { Algorithm, Digests } from '../types.js';
import { findMatch, primaryAlgorithm } from './digests.js';

export interface HashOptions {
  signal?: AbortSignal | undefined;
  onBytes?: ((bytes: number) => void) | undefined;
  /** Sees every chunk of the file as it is hashed (the pickle check). */
  onChunk?: ((data: Buffer, position: number) => void) | undefined;
}

export async function hashFile(
  pipeline: Pipeline,
  path: string,
  algorithms: readonly Algorithm[],
  options: HashOptions = {},
): Promise<{ bytes: number; digests: Digests }> {
  const source = await FileSource.open(path);
  try {
    const { bytes, digests } = await pipeline.run({ source, algorithms, signal: options.signal, onBytes: options.onBytes, onChunk: options.onChunk });
    return { bytes, digests };
  } finally {
    await source.close();
  }
}

export interface MatchOutcome {
  digests: Digests;
  match: ManifestEntry | undefined;
}

/** Hashes `path` in the strongest published algorithm and matches it with the published digests. */
export async function checkFile(
  pipeline: Pipeline,
  path: string,
  expected: readonly ManifestEntry[],
  options: HashOptions = {},
): Promise<MatchOutcome & { bytes: number }> {
  const primary = primaryAlgorithm(expected);
  if (!primary) return { digests: {}, match: undefined, bytes: 0 };
  const { bytes, digests } = await hashFile(pipeline, path, [primary], options);
  return { digests, match: findMatch(expected, digests), bytes };
}
