/**
 * Which digests a run checks against: a checksum list (--manifest), a built-in release (--model), the
 * list shipped in the XOR folder, or a release recognised from the paths.
 */
import { readFile, stat } from 'node:fs/promises';
import { asReadError, InputError } from '../errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, type Manifest } from './manifest.js';
import { detectModelFromPaths, findModel, listModels, modelEntries, type BuiltinModel } from './models.js';

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
  bundledManifest?: string | undefined;
}

export async function loadManifestFile(path: string): Promise<Manifest> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw asReadError(err, path);
  }
  if (!info.isFile()) throw new InputError('is not a file', { file: path, hint: 'pass a checksum list file to --manifest' });
  if (info.size > MAX_MANIFEST_BYTES) {
    throw new InputError(`is ${info.size} bytes, too large for a checksum list`, {
      file: path,
      hint: 'pass the checksum list (sha256sum/md5sum/rhash output), not a model file',
    });
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw asReadError(err, path);
  }
  return parseManifest(text, path);
}

export function requireModel(name: string, allowKinds: readonly BuiltinModel['kind'][] = ['release', 'base']): BuiltinModel {
  const model = findModel(name);
  const allowed = listModels().filter((m) => allowKinds.includes(m.kind));
  if (!model) {
    throw new InputError(`unknown model "${name}"`, {
      hint: `known: ${allowed.map((m) => m.name).join(', ')} (see "metharme-xor models")`,
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
    return { manifest: await loadManifestFile(options.bundledManifest), how: 'xor-folder', model: undefined, detectedFrom: undefined };
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

