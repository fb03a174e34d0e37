/**
 * Reading the built-in release data: finding a model, its digests, and recognising it from paths.
 * The data itself is model-data.ts.
 */
import type { Algorithm } from '../types.js';
import { algorithmForDigest, type ManifestEntry } from './manifest.js';
import { MODELS, type BuiltinModel, type DigestSource, type ModelKind } from './model-data.js';

export type { BuiltinModel, DigestSource, ModelKind } from './model-data.js';

export function listModels(): readonly BuiltinModel[] {
  return MODELS;
}

/** By name or by Hub repository id (PygmalionAI/metharme-13b), in any case. */
export function findModel(name: string): BuiltinModel | undefined {
  const wanted = name.trim().toLowerCase();
  return MODELS.find((m) => m.name === wanted || m.repo?.toLowerCase() === wanted);
}

/** Levenshtein distance, for suggestions. */
export function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The built-in name closest to a mistyped one (by name or repository id), if any is close enough. */
export function closestModelName(name: string, among: readonly BuiltinModel[] = MODELS): string | undefined {
  const wanted = name.trim().toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const m of among) {
    for (const candidate of [m.name, ...(m.repo ? [m.repo.toLowerCase(), m.repo.split('/')[1]!.toLowerCase()] : [])]) {
      const distance = editDistance(wanted, candidate);
      if (!best || distance < best.distance) best = { name: m.name, distance };
    }
  }
  return best && best.distance <= Math.max(3, Math.floor(wanted.length / 3)) ? best.name : undefined;
}

function parseSourceLines(source: DigestSource): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  for (const line of source.lines.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    const [digest, name] = trimmed.split(/\s+/, 2) as [string, string];
    const algorithm = algorithmForDigest(digest);
    // The data above is part of the program; a typo in it must fail loudly in the tests, not at a user's.
    if (!algorithm || !name) throw new Error(`bad built-in digest line: ${trimmed}`);
    entries.push({ name, algorithm, digest, source: source.label });
  }
  return entries;
}

/** Every digest published for the model, primary source first. */
export function modelEntries(model: BuiltinModel): ManifestEntry[] {
  return model.sources.flatMap(parseSourceLines);
}

/** The primary source's entries: the list printed by `manifest <name>`. */
export function primaryEntries(model: BuiltinModel): ManifestEntry[] {
  return parseSourceLines(model.sources[0]!);
}

export function modelAlgorithms(model: BuiltinModel): Algorithm[] {
  return [...new Set(modelEntries(model).map((e) => e.algorithm))];
}

export function modelFileCount(model: BuiltinModel): number {
  return new Set(modelEntries(model).map((e) => e.name)).size;
}

/** Names a folder may carry for a model: its own, and for base conversions the name without "-hf". */
function folderNames(model: BuiltinModel): string[] {
  return model.kind === 'base' ? [model.name, model.name.replace(/-hf$/, '')] : [model.name];
}

/**
 * Recognises a model from folder names, e.g. ".../metharme-13b/xor_encoded_files" or a Hugging Face
 * cache path ".../models--PygmalionAI--metharme-13b/snapshots/<rev>/xor_encoded_files". The deepest
 * matching folder wins, so a release folder inside another model's folder is named correctly.
 */
export function detectModelFromPaths(
  paths: readonly string[],
  kinds: readonly ModelKind[] = ['release'],
): { model: BuiltinModel; path: string } | undefined {
  // Longest names first so "oasst-sft-6-llama-30b" is not mistaken for a shorter name inside it.
  const candidates = MODELS.filter((m) => kinds.includes(m.kind))
    .flatMap((model) => folderNames(model).map((name) => ({ model, name })))
    .sort((a, b) => b.name.length - a.name.length);
  for (const p of paths) {
    const parts = p.split(/[\\/]+/).filter(Boolean).reverse();
    for (const part of parts) {
      const lower = part.toLowerCase();
      const hit = candidates.find((c) => new RegExp(`(^|[^a-z0-9])${c.name.replace(/[-.]/g, '\\$&')}([^a-z0-9]|$)`).test(lower));
      if (hit) return { model: hit.model, path: p };
    }
  }
  return undefined;
}
