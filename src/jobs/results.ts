/**
 * What the jobs report: one result shape per file, built in one place, for decode and verify alike,
 * and decode's report, events and options.
 */
import type { BaseRebuild, FileAction, DecodePlan, FilePlan } from '../plan/plan.js';
import type { Expectations } from '../release/expectations.js';
import type { ManifestEntry } from '../release/manifest.js';
import type { Algorithm, Cause, Diagnosis, Digests, ExpectedDigest, FileStatus } from '../types.js';
import { describeExpected, primaryAlgorithm } from '../verify/digests.js';

/** What every report says about one file. */
export interface FileVerdict {
  name: string;
  bytes: number | null;
  /** The algorithm of `actual`: the one that matched, else the one computed. */
  algorithm: Algorithm | null;
  expected: ExpectedDigest[];
  actual: string | null;
  matchedSource: string | null;
  status: FileStatus;
  seconds: number;
  /** Why the file failed and what to do, when that can be told. */
  diagnosis: Diagnosis[];
}

export interface VerdictInput {
  name: string;
  expected: readonly ManifestEntry[];
  status: FileStatus;
  seconds: number;
  bytes?: number | null | undefined;
  /** The algorithm computed (or that would have been), shown when nothing matched. */
  algorithm?: Algorithm | null | undefined;
  digests?: Digests | undefined;
  match?: ManifestEntry | undefined;
  diagnosis?: Diagnosis[] | undefined;
}

export function verdict(input: VerdictInput): FileVerdict {
  const shown = input.match?.algorithm ?? input.algorithm ?? null;
  return {
    name: input.name,
    bytes: input.bytes ?? null,
    algorithm: shown,
    expected: describeExpected(input.expected),
    actual: shown && input.digests ? (input.digests[shown] ?? null) : null,
    matchedSource: input.match?.source ?? null,
    status: input.status,
    seconds: input.seconds,
    diagnosis: input.diagnosis ?? [],
  };
}

export interface BaseCheck {
  /** published: the base file is the published conversion; not-published: it is not; unknown: no digest. */
  status: 'published' | 'not-published' | 'unknown';
  digests: Digests;
}

export interface FileResult extends FileVerdict {
  action: FileAction | 'none';
  /** For a failed file: what is at fault, decided from evidence (see the README's table); else null. */
  cause: Cause | null;
  note: string | null;
  /** With --check-base: whether the base file is the published conversion. */
  baseCheck: BaseCheck | null;
  /** Resumed inside the file: the bytes an interrupted run had written, not fetched again; else null. */
  resumedAt: number | null;
}

export interface DecodeReport {
  outputDir: string;
  xorDir: string;
  baseDir: string;
  verifiedAgainst: { label: string; how: Expectations['how']; detectedFrom: string | null } | null;
  /** For an hf:// XOR folder: the repository, the revision asked for, and the commit every request used. */
  source: { repo: string; revision: string; commit: string } | null;
  /** The same for an hf:// base folder. */
  baseSource: { repo: string; revision: string; commit: string } | null;
  /** When base files were rebuilt from LLaMA in another layout: the target, what from, which files. */
  baseRebuild: BaseRebuild | null;
  /** Files added beside the release's (decode --chat-template). */
  added: { name: string; status: 'written' | 'present' }[];
  /** decode --gguf: the GGUF, or null without --gguf. */
  gguf: GgufResult | null;
  files: FileResult[];
  /** Everything the run warned about (also printed on stderr). */
  warnings: string[];
  /** What the run did that the user should know without acting on it (resuming or restarting inside a file; also printed). */
  notes: string[];
  ignored: string[];
  totals: {
    files: number;
    bytes: number;
    seconds: number;
    verified: number;
    mismatch: number;
    invalid: number;
    unverified: number;
    /** With --check-base: base files that are not the published conversion. */
    badBase: number;
    skipped: number;
    missing: number;
    /** Files not started because an earlier one failed for a reason that repeats (see keepGoing). */
    notStarted: number;
    /** Files not kept because their pickle could run code. */
    unsafe: number;
    /** Files produced but not verified: no digest known, or --no-verify (with --strict they fail the run). */
    notVerified: number;
    /** Peak resident memory of this process so far (bytes): flat whatever the file sizes. */
    peakRssBytes: number;
  };
  /** --strict: a file that could not be verified fails the run. */
  strict: boolean;
  /** 0 when every file was produced and verified (or verification was not asked for, unless strict), else 1. */
  exitCode: 0 | 1;
}

/** decode: writing the output; check-existing: hashing an output already there; diagnose: hashing the base after a failure. */
export type FilePhase = 'decode' | 'check-existing' | 'diagnose';

export type DecodeEvent =
  | { type: 'plan'; plan: DecodePlan; totalBytes: number }
  /** safety: the user must hear it even with --quiet (something will not be verified, or may be wrong). */
  | { type: 'warning'; message: string; safety?: boolean }
  /** What the run does that the user should know but need not act on (e.g. resuming inside a file). */
  | { type: 'note'; message: string }
  | { type: 'file-start'; name: string; bytes: number; action: FileAction; phase: FilePhase }
  | { type: 'progress'; name: string; bytes: number }
  | { type: 'file-done'; result: FileResult }
  | { type: 'gguf-done'; gguf: GgufResult };

/** decode --gguf: the one GGUF written instead of the shards. */
export interface GgufResult {
  path: string;
  /** Q8_0, BF16, ... */
  type: string;
  tensors: number;
  bytes: number;
  /** Given its final name: every shard went into it (a shard that failed leaves no GGUF). */
  written: boolean;
  /** Every shard matched its published digest. */
  verified: boolean;
}

/** A file the manifest lists that the XOR folder lacks. */
export function missingResult(expectedByName: ReadonlyMap<string, ManifestEntry[]>, name: string): FileResult {
  const expected = expectedByName.get(name) ?? [];
  return {
    ...verdict({ name, expected, status: 'missing', seconds: 0, algorithm: primaryAlgorithm(expected) }),
    action: 'none',
    note: 'listed in the manifest but not in the XOR folder',
    baseCheck: null,
    cause: null,
    resumedAt: null,
  };
}

/** A file the run did not get to. */
export function notStartedResult(file: FilePlan): FileResult {
  return {
    ...verdict({ name: file.name, expected: file.expected, status: 'not-started', seconds: 0, algorithm: primaryAlgorithm(file.expected) }),
    action: file.action,
    note: 'not started: an earlier file failed because of its base (or for a reason no evidence decides); --keep-going decodes every file',
    baseCheck: null,
    cause: null,
    resumedAt: null,
  };
}
