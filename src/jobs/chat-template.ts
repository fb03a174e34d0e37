/**
 * decode --chat-template: the Metharme prompt format beside Hugging Face outputs, as
 * chat_template.jinja (the file transformers reads a model's template from). An added file, not one
 * of the release's: written atomically, left alone when it already says the same, and never put over
 * another template without --force.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { commitTemp, createTemp, discardTemp } from '../output/temp-file.js';
import { CHAT_TEMPLATE_FILE, METHARME_CHAT_TEMPLATE } from '../release/prompt-format.js';

/** 'written', or 'present' when the folder already has the same template. */
export async function writeChatTemplate(outputDir: string, force: boolean): Promise<'written' | 'present'> {
  const path = join(outputDir, CHAT_TEMPLATE_FILE);
  const existing = await readFile(path, 'utf8').catch(() => undefined);
  if (existing === METHARME_CHAT_TEMPLATE) return 'present';
  if (existing !== undefined && !force) throw new InputError('already holds another chat template', { file: path, hint: 'use --force to replace it' });
  const temp = await createTemp(outputDir, CHAT_TEMPLATE_FILE);
  try {
    const data = Buffer.from(METHARME_CHAT_TEMPLATE, 'utf8');
    await temp.writeBuffered(data, data.length, 0);
    await commitTemp(temp);
  } catch (err) {
    await discardTemp(temp);
    throw err;
  }
  return 'written';
}
