/**
 * check-base: is this folder the LLaMA conversion the release was made against? Answers in one
 * hashing pass before an hour of decoding, and names the likely cause when it is not.
 */
import { resolve } from 'node:path';
import { InputError } from '../errors.js';
import { folderFileNotPublished } from '../verify/diagnosis-text.js';
import { detectModelFromPaths, findModel, listModels } from '../release/models.js';
import { requireModel } from '../release/expectations.js';
import { verifyFolder, type VerifyOptions, type VerifyReport } from './verify.js';

export interface CheckBaseOptions extends Omit<VerifyOptions, 'manifest'> {
  /** A base conversion, or a release (its base is checked). Recognised from the path if absent. */
  model?: string | undefined;
}

export function baseModelFor(model: string | undefined, dir: string): string {
  if (model) {
    const m = requireModel(model);
    return m.kind === 'release' ? m.base! : m.name;
  }
  const detected = detectModelFromPaths([resolve(dir)], ['base', 'release']);
  if (!detected) {
    const bases = listModels()
      .filter((m) => m.kind === 'base')
      .map((m) => m.name);
    throw new InputError('cannot tell which LLaMA conversion this folder should be', {
      file: dir,
      hint: `pass --model with one of ${bases.join(', ')} or the release's name`,
    });
  }
  return detected.model.kind === 'release' ? detected.model.base! : detected.model.name;
}

export async function checkBase(options: CheckBaseOptions): Promise<VerifyReport> {
  const baseName = baseModelFor(options.model, options.dir);
  const report = await verifyFolder({ ...options, model: baseName }, ['base']);
  const conversion = findModel(baseName)!.conversion;
  for (const f of report.files) {
    if (f.status === 'mismatch' && f.diagnosis.length === 0) {
      f.diagnosis.push(folderFileNotPublished(f.name, baseName, conversion));
    }
  }
  return report;
}
