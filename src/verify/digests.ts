/**
 * Comparing computed digests with published ones. One file may have several published digests
 * (different sources, sometimes different algorithms); it is correct if it matches any of them.
 */
import type { ManifestEntry } from '../release/manifest.js';
import type { Algorithm, Digests, ExpectedDigest } from '../types.js';

/** SHA-256 when anything was published in it (stronger, and the fast hasher here), else MD5. */
export function primaryAlgorithm(expected: readonly ManifestEntry[]): Algorithm | undefined {
  if (expected.some((e) => e.algorithm === 'sha256')) return 'sha256';
  if (expected.some((e) => e.algorithm === 'md5')) return 'md5';
  return undefined;
}

/** Algorithms published for the file that were not computed yet: needed only after a mismatch. */
export function otherAlgorithms(expected: readonly ManifestEntry[], computed: Digests): Algorithm[] {
  return [...new Set(expected.map((e) => e.algorithm))].filter((a) => computed[a] === undefined);
}

export function findMatch(expected: readonly ManifestEntry[], computed: Digests): ManifestEntry | undefined {
  return expected.find((e) => computed[e.algorithm] === e.digest);
}

export function describeExpected(expected: readonly ManifestEntry[]): ExpectedDigest[] {
  return expected.map((e) => ({ digest: e.digest, algorithm: e.algorithm, source: e.source }));
}
