/**
 * hf:// sources, in the form huggingface_hub's file system uses:
 * hf://<owner>/<name>[@<revision>][/<path-in-repo>], e.g. hf://PygmalionAI/metharme-13b/xor_encoded_files.
 * Model repositories only (datasets/ and spaces/ prefixes are refused with that said).
 */
import { InputError } from '../errors.js';

export interface HfSource {
  /** owner/name */
  repo: string;
  /** A branch, tag or commit; "main" when not given. */
  revision: string;
  /** A folder in the repository, without leading or trailing slashes; "" for its root. */
  path: string;
}

export function isHfUrl(text: string): boolean {
  return text.startsWith('hf://');
}

export function parseHfUrl(text: string): HfSource {
  const rest = text.slice('hf://'.length);
  const parts = rest.split('/');
  const owner = parts[0] ?? '';
  if (owner === 'datasets' || owner === 'spaces') {
    throw new InputError(`${owner} repositories are not releases of model weights`, { file: text, hint: 'pass hf://<owner>/<model>[@<revision>][/<folder>]' });
  }
  const [name, revision, ...extra] = (parts[1] ?? '').split('@');
  const valid = /^[A-Za-z0-9][\w.-]*$/;
  if (!valid.test(owner) || !name || !valid.test(name) || extra.length > 0 || revision === '') {
    throw new InputError('is not an hf:// source', { file: text, hint: 'write hf://<owner>/<name>[@<revision>][/<path>], e.g. hf://PygmalionAI/metharme-13b/xor_encoded_files' });
  }
  const path = parts.slice(2).filter((p) => p !== '').join('/');
  if (path.split('/').some((p) => p === '..' || p === '.')) throw new InputError('has "." or ".." in its path', { file: text, hint: 'name the folder in the repository directly' });
  return { repo: `${owner}/${name}`, revision: revision ?? 'main', path };
}

export function formatHfUrl(source: HfSource, file?: string): string {
  const path = [source.path, file].filter(Boolean).join('/');
  return `hf://${source.repo}${source.revision === 'main' ? '' : `@${source.revision}`}${path ? `/${path}` : ''}`;
}
