/**
 * Types shared across layers: digests, verdicts and diagnoses. They live here, not in the modules
 * that produce them, so the codec never imports the manifest parser and diagnosis never imports a job.
 */

export type Algorithm = 'md5' | 'sha256';

export type Digests = Partial<Record<Algorithm, string>>;

/** A published digest, as reports show it. */
export interface ExpectedDigest {
  digest: string;
  algorithm: Algorithm;
  /** Where it was published (built-in manifests) or the manifest line it came from. */
  source: string;
}

/**
 * The verdict on one file, the same word in every report (decode, verify, check-base).
 * verified: matches a published digest. mismatch: complete but matches none. invalid: not kept
 * because its decoded bytes cannot be right (only where no digest can decide). unverified: no digest
 * to check. skipped: already there and verified. missing: listed in the manifest but absent.
 * not-started: not decoded because an earlier file failed for a reason that repeats. unsafe: its
 * pickle references globals outside torch's weights-only allowlist (loading it could run code).
 */
export type FileStatus = 'verified' | 'mismatch' | 'invalid' | 'unverified' | 'skipped' | 'missing' | 'not-started' | 'unsafe';

/**
 * Why a file failed, decided only from evidence that was checked (see diagnose.ts's table):
 * base: the base file is not the one the release was made against; xor-file: the XOR file is damaged;
 * manifest: the published digest is wrong or for another revision; unknown: no evidence decides.
 */
export type Cause = 'base' | 'xor-file' | 'manifest' | 'unknown';

/** What a checked source of truth says about an input file. */
export type Integrity = 'intact' | 'differs' | 'unknown';

export type DiagnosisCode =
  | 'lfs-pointer'
  | 'not-a-checkpoint'
  | 'invalid-safetensors'
  | 'invalid-json'
  | 'size-differs'
  | 'crlf'
  | 'base-is-published'
  | 'base-not-published'
  | 'base-not-checked'
  | 'base-received-corrupt'
  | 'base-truncated'
  | 'xor-file-intact'
  | 'xor-file-corrupt'
  | 'xor-file-unknown'
  | 'cause'
  | 'unsafe-pickle'
  | 'invalid-pickle'
  | 'tensors-differ';

export interface Diagnosis {
  code: DiagnosisCode;
  /** One sentence naming the file, the cause and the fix. */
  message: string;
}
