/**
 * One output name, one input. Two files of a plan written under one name would each be reported,
 * verified or not, while the folder keeps only the later: a release file named as a converted
 * shard's new name (model.safetensors.index.json beside pytorch_model.bin.index.json under
 * --safetensors) or as the GGUF, or two names that differ only in case or Unicode normalisation,
 * which macOS and Windows (and exFAT or NTFS anywhere) hold as one file. Refused before anything
 * is written, on every platform, so that a release decodes the same everywhere.
 */
import { basename } from 'node:path';
import { InputError } from '../errors.js';

/** The name as a file system that ignores case and normalisation sees it (ß and ss taken as one: a release never needs both). */
export function sameFileKey(name: string): string {
  return name.normalize('NFC').toUpperCase().toLowerCase().normalize('NFC');
}

export interface PlannedOutput {
  /** The release's name for it. */
  name: string;
  payloadPath: string;
  /** The name it is written under. */
  output: string;
}

/** A name the run writes besides the plan's files (the GGUF), and what it is, for the message. */
export interface OtherOutput {
  name: string;
  what: string;
}

export function refuseSharedOutputs(files: readonly PlannedOutput[], others: readonly OtherOutput[] = []): void {
  const taken = new Map<string, { name: string; by: string; hint: string }>();
  for (const o of others) taken.set(sameFileKey(o.name), { name: o.name, by: o.what, hint: 'take it out of the XOR folder' });
  for (const f of files) {
    const name = f.output;
    const key = sameFileKey(name);
    const earlier = taken.get(key);
    if (earlier) {
      const how = earlier.name === name ? '' : ` (${JSON.stringify(earlier.name)} differs from it only in case or Unicode normalisation, one file on macOS and Windows)`;
      throw new InputError(`would be written as ${name}, which is also the name of ${earlier.by}${how}: one would replace the other`, {
        file: f.payloadPath,
        hint: earlier.hint,
      });
    }
    taken.set(key, { name, by: name === f.name ? f.payloadPath : `${f.payloadPath} as written`, hint: 'keep one of them in the XOR folder' });
  }
}

/** The model a decode's GGUF is named after: the release verified against, else the output folder. */
export function ggufModelName(plan: { expectations?: { model?: { name: string } | undefined } | undefined; outputDir: string }): string {
  return plan.expectations?.model?.name ?? basename(plan.outputDir);
}
