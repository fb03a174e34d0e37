/** What every file of a run shares, and the one place a file's result is put together. */
import { performance } from 'node:perf_hooks';
import type { ResumeState } from '../output/state.js';
import type { DecodePlan, FilePlan } from '../plan/plan.js';
import type { GgufAssembly } from '../output/gguf-assembly.js';
import { verdict, type DecodeEvent, type FileResult, type VerdictInput } from './results.js';

/** What every file of one run shares. */
export interface RunContext {
  plan: DecodePlan;
  /** Hash outputs and compare them with the published digests. */
  verifying: boolean;
  force: boolean;
  /** --check-base: hash every base file as it is read. */
  checkingBase: boolean;
  /** Keep files whose pickle references globals outside torch's allowlist (with a warning). */
  allowUnsafePickle: boolean;
  /** Evidence gathered by earlier diagnoses in this run. */
  evidence: { badBaseSeen: boolean };
  resume: ResumeState;
  signal: AbortSignal;
  notify: (event: DecodeEvent) => void;
  /** decode --gguf: the GGUF the shards stream into (set once the small files are decoded). */
  gguf?: GgufAssembly;
}

export function resultOf(file: FilePlan, t0: number, input: Omit<VerdictInput, 'name' | 'expected' | 'seconds'>, extra: Partial<FileResult> = {}): FileResult {
  return {
    ...verdict({ name: file.name, expected: file.expected, seconds: (performance.now() - t0) / 1000, ...input }),
    action: file.action,
    note: file.note ?? null,
    baseCheck: null,
    cause: null,
    resumedAt: null,
    ...extra,
  };
}

export function resumePaths(file: FilePlan) {
  return { output: file.outputPath, payload: file.payloadPath, base: file.basePath };
}

