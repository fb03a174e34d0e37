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
  if (hit) {
    return {
      code: 'base-is-published',
      message: `base file ${file.basePath} matches the published ${hit.model.name} conversion, so the XOR file or the manifest is at fault: download the XOR file again`,
    };
  }
  const names = candidates.map((c) => c.model.name).join(' or ');
  const how = candidates.length === 1 && candidates[0]!.model.conversion ? ` (the releases were made against ${candidates[0]!.model.conversion})` : '';
  return {
    code: 'base-not-published',
    message: `base file ${file.basePath} is not the published ${names} conversion; it was probably converted with another transformers version${how}: convert LLaMA again with that version, or use a base that passes "metharme-xor check-base"`,
  };
}

export interface DiagnoseContext {
  pipeline: Pipeline;
  releaseBase: string | undefined;
  /** Base digests already computed (--check-base), so the base is not read again. */
  baseDigests?: Digests | undefined;
  /** Set once a base file proved not to be the published one: large bases are then not re-hashed. */
  state: { badBaseSeen: boolean };
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
    found.push({
      code: 'size-differs',
      message: `base file ${file.basePath} is ${file.baseSize} bytes but the XOR file is ${file.payloadSize} bytes: the base is most likely not the conversion the XOR files were made against`,
    });
  }
  if (file.name.endsWith('.json')) {
    const payloadCrlf = file.action !== 'xor-gzip' && (await hasCrlf(file.payloadPath));
    const baseCrlf = await hasCrlf(file.basePath);
    if (payloadCrlf || baseCrlf) {
      found.push({
        code: 'crlf',
        message: `${payloadCrlf ? file.payloadPath : file.basePath} has CRLF line endings: git probably rewrote them (Windows core.autocrlf); clone again with "git -c core.autocrlf=false clone ..." or run "git config --global core.autocrlf false" and re-checkout`,
      });
    }
  }
  if (file.basePath && file.baseSize !== undefined) {
    const algorithms = baseAlgorithmsFor(file.name, ctx.releaseBase);
    if (algorithms.length > 0) {
      let digests = ctx.baseDigests;
      const complete = digests && algorithms.every((a) => digests![a] !== undefined);
      if (!complete && ctx.state.badBaseSeen && file.baseSize > ALWAYS_HASH_BASE_BYTES) {
        found.push({
          code: 'base-not-checked',
          message: `base file ${file.basePath} was not hashed, as another base file already proved not to be the published conversion; check the whole folder with "metharme-xor check-base"`,
        });
        return found;
      }
      if (!complete) digests = (await hashFile(ctx.pipeline, file.basePath, algorithms, ctx.hash)).digests;
      const verdict = judgeBase(file, digests!, ctx.releaseBase);
      if (verdict) {
        if (verdict.code === 'base-not-published') ctx.state.badBaseSeen = true;
        found.push(verdict);
      }
    }
  }
  return found;
}
