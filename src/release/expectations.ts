/**
 * Which digests a run checks against: a checksum list (--manifest), a built-in release (--model), the
 * list shipped in the XOR folder, or a release recognised from the paths.
 */
import { stat } from 'node:fs/promises';
import { readInput, readStdin } from '../input-files.js';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { entriesByName, MAX_MANIFEST_BYTES, parseManifest, type Manifest, type ManifestEntry } from './manifest.js';
import { closestModelName, detectModelFromPaths, findModel, listModels, modelEntries, type BuiltinModel } from './models.js';

export interface Expectations {
  manifest: Manifest;
  /** How the digests were chosen: --model, --manifest, the XOR folder's SHA256SUMS, or recognised from a path. */
  how: 'model' | 'manifest' | 'xor-folder' | 'detected';
  model: BuiltinModel | undefined;
  /** For "detected": the folder the model name was read from. */
  detectedFrom: string | undefined;
}

export interface ExpectationOptions {
  model?: string | undefined;
  manifest?: string | undefined;
  /** Folders to recognise a release from when neither --model nor --manifest is given. */
  detectFrom?: readonly string[];
  /** Which kinds --model may name here. */
  allowKinds?: readonly BuiltinModel['kind'][];
  /** A checksum list shipped with the release, used when neither --model nor --manifest is given. */
  bundledManifest?: { label: string; read: () => Promise<Buffer> } | undefined;
}

/** "-" names standard input, as `sha256sum -c -` reads it. */
export const STDIN_MANIFEST = '-';

export async function loadManifestFile(path: string): Promise<Manifest> {
  // Bounded and regular files only: a FIFO or /dev/zero passed as a manifest is refused, not read forever.
  const { bytes, size } = path === STDIN_MANIFEST ? await readStdin(MAX_MANIFEST_BYTES) : await readInput(path, MAX_MANIFEST_BYTES);
  if (size > MAX_MANIFEST_BYTES) {
    throw new InputError(`is ${size} bytes, too large for a checksum list`, {
      file: path,
      hint: 'pass the checksum list (sha256sum/md5sum/rhash output), not a model file',
    });
  }
  return parseManifest(bytes.toString('utf8'), path === STDIN_MANIFEST ? 'standard input' : path);
}

export function requireModel(name: string, allowKinds: readonly BuiltinModel['kind'][] = ['release', 'base']): BuiltinModel {
  const model = findModel(name);
  const allowed = listModels().filter((m) => allowKinds.includes(m.kind));
  if (!model) {
    const closest = closestModelName(name, allowed);
    throw new InputError(`unknown model "${name}"`, {
      hint: `${closest ? `did you mean "${closest}"? ` : ''}known: ${allowed.map((m) => m.name).join(', ')}, or their Hugging Face repository ids (see "metharme-xor models")`,
    });
  }
  if (!allowKinds.includes(model.kind)) {
    throw new InputError(`"${name}" is a ${model.kind === 'base' ? 'base conversion' : 'release'}, not usable here`, {
      hint: `use one of: ${allowed.map((m) => m.name).join(', ')}`,
    });
  }
  return model;
}

export async function resolveExpectations(options: ExpectationOptions): Promise<Expectations | undefined> {
  if (options.model && options.manifest) {
    throw new InputError('--model and --manifest cannot be used together', { hint: 'pass one of them' });
  }
  if (options.manifest) {
    return {
      manifest: await loadManifestFile(options.manifest),
      how: 'manifest',
      model: undefined,
      detectedFrom: undefined,
    };
  }
  if (options.model) {
    const model = requireModel(options.model, options.allowKinds);
    return { manifest: { label: model.name, entries: modelEntries(model) }, how: 'model', model, detectedFrom: undefined };
  }
  if (options.bundledManifest) {
    const bytes = await options.bundledManifest.read();
    if (bytes.length > MAX_MANIFEST_BYTES) {
      throw new InputError('is too large for a checksum list', { file: options.bundledManifest.label, hint: 'remove it from the XOR folder, or pass --manifest' });
    }
    const manifest = parseManifest(bytes.toString('utf8'), options.bundledManifest.label);
    return { manifest, how: 'xor-folder', model: undefined, detectedFrom: undefined };
  }
  const detected = detectModelFromPaths(options.detectFrom ?? [], options.allowKinds ?? ['release']);
  if (!detected) return undefined;
  return {
    manifest: { label: detected.model.name, entries: modelEntries(detected.model) },
    how: 'detected',
    model: detected.model,
    detectedFrom: detected.path,
  };
}


/** A checksum list and the name users know it by. */
export interface DigestList {
  label: string;
  byName: Map<string, ManifestEntry[]>;
}

/** Digests of the base files a release was made against, and how that base was made, when known. */
export interface BaseDigestList extends DigestList {
  recipe?: string | undefined;
}

/** Published digests of the inputs, which decide the cause when a file fails. */
export interface InputDigests {
  payload: DigestList | undefined;
  base: BaseDigestList | undefined;
}

async function listIfPresent(path: string): Promise<DigestList | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  const manifest = await loadManifestFile(path);
  return { label: path, byName: entriesByName(manifest.entries) };
}

/**
 * Where the inputs' digests come from: --xor-manifest, else SHA256SUMS.xor in the XOR folder;
 * --base-manifest, else SHA256SUMS.base in the XOR folder, else the built-in base conversion, but only
 * when the release is a known one (never for a custom manifest).
 */
export async function resolveInputDigests(options: {
  xorDir: string;
  xorManifest?: string | undefined;
  baseManifest?: string | undefined;
  release: BuiltinModel | undefined;
}): Promise<InputDigests> {
  const payload = options.xorManifest
    ? { label: options.xorManifest, byName: entriesByName((await loadManifestFile(options.xorManifest)).entries) }
    : await listIfPresent(join(options.xorDir, 'SHA256SUMS.xor'));
  let base: BaseDigestList | undefined = options.baseManifest
    ? { label: options.baseManifest, byName: entriesByName((await loadManifestFile(options.baseManifest)).entries) }
    : await listIfPresent(join(options.xorDir, 'SHA256SUMS.base'));
  const conversion = options.release?.base ? findModel(options.release.base) : undefined;
  if (!base && conversion) {
    base = { label: `the published ${conversion.name} conversion`, byName: entriesByName(modelEntries(conversion)), recipe: conversion.conversion };
  }
  return { payload, base };
}
