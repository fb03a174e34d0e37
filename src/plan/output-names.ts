/**
 * The names a decode writes under: a release file's own or its converted one, the GGUF, the chat
 * template. And one output name for one input: two files written under one name would each be
 * reported, verified or not, while the folder keeps only the later: a release file named as a
 * converted shard's new name (model.safetensors.index.json beside pytorch_model.bin.index.json under
 * --safetensors), as the GGUF or as the template, or two names that differ only in case or Unicode
 * normalisation, which macOS and Windows (and exFAT or NTFS anywhere) hold as one file. Refused
 * before anything is written, on every platform, so that a release decodes the same everywhere.
 */
import { basename } from 'node:path';
import { InputError } from '../errors.js';
import { GGUF_TYPES, ggufFileName, type GgufTypeName } from '../output/gguf-types.js';
import { CHAT_TEMPLATE_FILE } from '../release/prompt-format.js';

/** How a release file is converted on its way out: as safetensors, its index rewritten for them, or into the GGUF. */
export type Conversion = 'safetensors' | 'safetensors-index' | 'gguf';

/** The names transformers gives safetensors shards and their index. */
export function safetensorsName(name: string): { name: string; convert: Conversion } | undefined {
  const shard = /^pytorch_model((?:-\d+-of-\d+)?)\.bin$/.exec(name);
  if (shard) return { name: `model${shard[1]}.safetensors`, convert: 'safetensors' };
  if (name === 'pytorch_model.bin.index.json') return { name: 'model.safetensors.index.json', convert: 'safetensors-index' };
  return undefined;
}

/** The name a release file is written under, and how it is converted (none: as it is). */
export function outputNameOf(name: string, asked: { safetensors?: boolean | undefined; gguf?: GgufTypeName | undefined }): { name: string; convert?: Conversion } {
  if (asked.safetensors) return safetensorsName(name) ?? { name };
  return asked.gguf && /^pytorch_model(-\d+-of-\d+)?\.bin$/.test(name) ? { name, convert: 'gguf' } : { name };
}

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

/** What a decode writes besides the release's files: the GGUF (any type its --gguf can become) and the chat template. */
export function addedOutputs(asked: { gguf?: GgufTypeName | undefined; chatTemplate?: boolean | undefined }, model: string): OtherOutput[] {
  const ggufs = asked.gguf ? GGUF_TYPES.filter((t) => t !== 'auto').map((t) => ({ name: ggufFileName(model, t), what: 'a GGUF this decode can write' })) : [];
  return [...ggufs, ...(asked.chatTemplate ? [{ name: CHAT_TEMPLATE_FILE, what: 'the chat template --chat-template writes' }] : [])];
}

/** `folder`: where the files come from, for the fix. */
export function refuseSharedOutputs(files: readonly PlannedOutput[], others: readonly OtherOutput[] = [], folder = 'the XOR folder'): void {
  const taken = new Map<string, { name: string; by: string; hint: string }>();
  for (const o of others) taken.set(sameFileKey(o.name), { name: o.name, by: o.what, hint: `take it out of ${folder}` });
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
    taken.set(key, { name, by: name === f.name ? f.payloadPath : `${f.payloadPath} as written`, hint: `keep one of them in ${folder}` });
  }
}

/** The model a decode's GGUF is named after: the release verified against, else the output folder. */
export function ggufModelName(plan: { expectations?: { model?: { name: string } | undefined } | undefined; outputDir: string }): string {
  return plan.expectations?.model?.name ?? basename(plan.outputDir);
}
