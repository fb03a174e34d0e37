/**
 * check-base: is this folder the LLaMA conversion the release was made against? Answers in one
 * hashing pass before an hour of decoding, and names the likely cause when it is not.
 */
import { resolve } from 'node:path';
import { InputError } from '../errors.js';
import { isHfUrl } from '../hub/hf-url.js';
import { folderFileNotPublished } from '../verify/diagnosis-text.js';
import { detectModelFromPaths, findModel, listModels } from '../release/models.js';
import { requireModel } from '../release/expectations.js';
import { checkOptions } from './options.js';
import { VERIFY_OPTIONS, verifyFolder, type VerifyOptions, type VerifyReport } from './verify.js';

export interface CheckBaseOptions extends VerifyOptions {
  /** A base conversion, or a release (its base is checked). Recognised from the path if absent. */
  model?: string | undefined;
  /** Digests of the base files (e.g. a release's SHA256SUMS.base): works for any release. */
  manifest?: string | undefined;
}

export function baseModelFor(model: string | undefined, dir: string): string {
  if (model) {
    const m = requireModel(model);
    return m.kind === 'release' ? m.base! : m.name;
  }
  const detected = detectModelFromPaths([isHfUrl(dir) ? dir : resolve(dir)], ['base', 'release']);
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
  checkOptions(options, VERIFY_OPTIONS.required, VERIFY_OPTIONS.optional);
  if (options.model && options.manifest) {
    throw new InputError('--model and --manifest cannot be used together', { hint: 'pass one of them' });
  }
  const baseName = options.manifest ? undefined : baseModelFor(options.model, options.dir);
  const report = await verifyFolder({ ...options, model: baseName }, ['base']);
  const recipe = baseName ? findModel(baseName)!.conversion : undefined;
  for (const f of report.files) {
    if (f.status === 'mismatch' && f.diagnosis.length === 0) {
      f.diagnosis.push(folderFileNotPublished(f.name, report.manifest.label, recipe));
    }
  }
  return report;
}
