/**
 * Hashing files through the pipeline and matching them with published digests. Used by decode (an
 * output already in place), verify, check-base, encode and diagnosis.
 */
import { Pipeline } from '../codec/pipeline.js';
import { FileSource, type ByteSource } from '../codec/sources.js';
import type { ManifestEntry } from '../release/manifest.js';
import type { Algorithm, Digests } from '../types.js';
import { findMatch, primaryAlgorithm } from './digests.js';

export interface HashOptions {
  signal?: AbortSignal | undefined;
  onBytes?: ((bytes: number) => void) | undefined;
  /** Sees every chunk of the file as it is hashed (the pickle check). */
  onChunk?: ((data: Buffer, position: number) => void) | undefined;
}

/** `input`: a local file's path, or an open source (a file on the Hub), which is closed here. */
export async function hashFile(
  pipeline: Pipeline,
  input: string | ByteSource,
  algorithms: readonly Algorithm[],
  options: HashOptions = {},
): Promise<{ bytes: number; digests: Digests }> {
  const source = typeof input === 'string' ? await FileSource.open(input) : input;
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

/** Hashes `input` in the strongest published algorithm and matches it with the published digests. */
export async function checkFile(
  pipeline: Pipeline,
  input: string | ByteSource,
  expected: readonly ManifestEntry[],
  options: HashOptions = {},
): Promise<MatchOutcome & { bytes: number }> {
  const primary = primaryAlgorithm(expected);
  if (!primary) {
    if (typeof input !== 'string') await input.close();
    return { digests: {}, match: undefined, bytes: 0 };
  }
  const { bytes, digests } = await hashFile(pipeline, input, [primary], options);
  return { digests, match: findMatch(expected, digests), bytes };
}
