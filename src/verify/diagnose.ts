/**
 * Naming the cause of a failed file. Almost every failed decode in the public threads came from a
 * base converted with another transformers version, a clone without git-lfs, or git rewriting line
 * endings; these checks tell which, with the fix, instead of leaving users to guess.
 */
import { readFile } from 'node:fs/promises';
import type { ManifestEntry } from '../release/manifest.js';
import type { Algorithm, Diagnosis, Digests } from '../types.js';
import { findModel, listModels, modelEntries, type BuiltinModel } from '../release/models.js';
import type { Pipeline } from '../codec/pipeline.js';
import type { FilePlan } from '../plan/plan.js';
import * as text from './diagnosis-text.js';
import { hashFile, type HashOptions } from './hash-file.js';

/** Bases whose published digests can judge `name`: the release's own base, else every base that lists it. */
export function baseCandidates(name: string, releaseBase: string | undefined): { model: BuiltinModel; entries: ManifestEntry[] }[] {
  const models = releaseBase ? [findModel(releaseBase)!] : listModels().filter((m) => m.kind === 'base');
  return models
    .map((model) => ({ model, entries: modelEntries(model).filter((e) => e.name === name) }))
    .filter((c) => c.entries.length > 0);
}

export function baseAlgorithmsFor(name: string, releaseBase: string | undefined): Algorithm[] {
  return [...new Set(baseCandidates(name, releaseBase).flatMap((c) => c.entries.map((e) => e.algorithm)))];
}

/** Judges a base file's digests against the published conversions. */
export function judgeBase(
  file: Pick<FilePlan, 'name' | 'basePath'>,
  digests: Digests,
  releaseBase: string | undefined,
): Diagnosis | undefined {
  const candidates = baseCandidates(file.name, releaseBase);
  if (candidates.length === 0) return undefined;
  const hit = candidates.find((c) => c.entries.some((e) => digests[e.algorithm] === e.digest));
  if (hit) return text.baseIsPublished(file.basePath, hit.model.name);
  const names = candidates.map((c) => c.model.name).join(' or ');
  return text.baseNotPublished(file.basePath, names, candidates.length === 1 ? candidates[0]!.model.conversion : undefined);
}

export interface DiagnoseContext {
  pipeline: Pipeline;
  releaseBase: string | undefined;
  /** Base digests already computed (--check-base), so the base is not read again. */
  baseDigests?: Digests | undefined;
  /** Set once a base file proved not to be the published one: large bases are then not re-hashed. */
  evidence: { badBaseSeen: boolean };
  hash?: HashOptions;
}

/** A base file larger than this is hashed for a diagnosis only while no other base proved wrong. */
const ALWAYS_HASH_BASE_BYTES = 64 << 20;

async function hasCrlf(path: string | undefined): Promise<boolean> {
  if (!path) return false;
  const bytes = await readFile(path).catch(() => undefined);
  return bytes !== undefined && bytes.includes('\r\n');
}

export async function diagnoseFailure(file: FilePlan, ctx: DiagnoseContext): Promise<Diagnosis[]> {
  const found: Diagnosis[] = [];
  if (file.action === 'xor' && file.baseSize !== undefined && file.baseSize !== file.payloadSize && !file.name.endsWith('.json')) {
    found.push(text.sizeDiffers(file.basePath, file.baseSize, file.payloadSize));
  }
  if (file.name.endsWith('.json')) {
    const payloadCrlf = file.action !== 'xor-gzip' && (await hasCrlf(file.payloadPath));
    const baseCrlf = await hasCrlf(file.basePath);
    if (payloadCrlf || baseCrlf) {
      found.push(text.crlf(payloadCrlf ? file.payloadPath : file.basePath));
    }
  }
  if (file.basePath && file.baseSize !== undefined) {
    const algorithms = baseAlgorithmsFor(file.name, ctx.releaseBase);
    if (algorithms.length > 0) {
      let digests = ctx.baseDigests;
      const complete = digests && algorithms.every((a) => digests![a] !== undefined);
      if (!complete && ctx.evidence.badBaseSeen && file.baseSize > ALWAYS_HASH_BASE_BYTES) {
        found.push(text.baseNotChecked(file.basePath));
        return found;
      }
      if (!complete) digests = (await hashFile(ctx.pipeline, file.basePath, algorithms, ctx.hash)).digests;
      const verdict = judgeBase(file, digests!, ctx.releaseBase);
      if (verdict) {
        if (verdict.code === 'base-not-published') ctx.evidence.badBaseSeen = true;
        found.push(verdict);
      }
    }
  }
  return found;
}
