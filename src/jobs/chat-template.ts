/**
 * decode --chat-template: the Metharme prompt format beside Hugging Face outputs, as
 * chat_template.jinja (the file transformers reads a model's template from). An added file, not one
 * of the release's: written atomically, left alone when it already says the same, and never put over
 * another template without --force.
 */
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { readInput } from '../input-files.js';
import { commitTemp, createTemp, discardTemp, lstatOrUndefined } from '../output/temp-file.js';
import { CHAT_TEMPLATE_FILE, METHARME_CHAT_TEMPLATE } from '../release/prompt-format.js';

const TEMPLATE = Buffer.from(METHARME_CHAT_TEMPLATE, 'utf8');

/**
 * Whether the folder already has the template; throws when something else is where it must go and
 * --force was not given. Asked before a decode starts (a refusal then costs nothing) and again at
 * its end, before the template is written.
 */
export async function templateInPlace(outputDir: string, force: boolean): Promise<boolean> {
  const path = join(outputDir, CHAT_TEMPLATE_FILE);
  const info = await lstatOrUndefined(path);
  if (info?.isDirectory()) throw new InputError('is a folder where the chat template must go', { file: path, hint: 'move it away' });
  // A symlink is replaced, never read or written through (as any output). Only a regular file is
  // read, and bounded: a FIFO there hung the run beyond SIGTERM, /dev/zero filled the memory.
  if (!info || info.isSymbolicLink()) return false;
  if (info.isFile() && (await readInput(path, TEMPLATE.length + 1)).bytes.equals(TEMPLATE)) return true;
  if (force) return false;
  throw new InputError(info.isFile() ? 'already holds another chat template' : 'is not a regular file, where the chat template must go', { file: path, hint: 'use --force to replace it' });
}

/** 'written', or 'present' when the folder already has the same template. */
export async function writeChatTemplate(outputDir: string, force: boolean): Promise<'written' | 'present'> {
  if (await templateInPlace(outputDir, force)) return 'present';
  const temp = await createTemp(outputDir, CHAT_TEMPLATE_FILE);
  try {
    await temp.writeBuffered(TEMPLATE, TEMPLATE.length, 0);
    await commitTemp(temp);
  } catch (err) {
    await discardTemp(temp);
    throw err;
  }
  return 'written';
}
