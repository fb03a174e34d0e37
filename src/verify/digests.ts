/**
 * Comparing computed digests with published ones. One file may have several published digests
 * (different sources, sometimes different algorithms); it is correct if it matches any of them.
 */
import { digestBytes } from '../codec/hasher.js';
import type { ManifestEntry } from '../release/manifest.js';
import type { Algorithm, Digests, ExpectedDigest } from '../types.js';

/** SHA-256 when anything was published in it (stronger, and the fast hasher here), else MD5. */
export function primaryAlgorithm(expected: readonly ManifestEntry[]): Algorithm | undefined {
  if (expected.some((e) => e.algorithm === 'sha256')) return 'sha256';
  if (expected.some((e) => e.algorithm === 'md5')) return 'md5';
  return undefined;
}

/**
 * The published digest the file matches. Only the strongest algorithm listed decides: a matching MD5
 * cannot outvote a mismatching SHA-256 (MD5 collisions are cheap to make).
 */
export function findMatch(expected: readonly ManifestEntry[], computed: Digests): ManifestEntry | undefined {
  const strongest = primaryAlgorithm(expected);
  return expected.find((e) => e.algorithm === strongest && computed[e.algorithm] === e.digest);
}

export function describeExpected(expected: readonly ManifestEntry[]): ExpectedDigest[] {
  return expected.map((e) => ({ digest: e.digest, algorithm: e.algorithm, source: e.source }));
}

/** Whether bytes held whole give a published digest, by the same rule as every other match. */
export async function bytesMatch(expected: readonly ManifestEntry[], bytes: Uint8Array): Promise<boolean> {
  const strongest = primaryAlgorithm(expected);
  return strongest !== undefined && findMatch(expected, { [strongest]: await digestBytes(strongest, bytes) }) !== undefined;
}
