/**
 * Input and output folders: that inputs exist and are folders, that the output folder cannot
 * overwrite or mix with an input, and which files in an input folder are checksum lists, not data.
 */
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { asReadError, InputError } from '../errors.js';

/** Checksum lists published beside the payloads (as `encode` writes them) are not payloads. */
export function isChecksumListName(name: string): boolean {
  return /^(SHA256SUMS|MD5SUMS|SHA256SUM|MD5SUM)(\.[A-Za-z0-9_-]+)?$/i.test(name) || /\.(sha256|md5)$/i.test(name);
}

/** The real path of an input folder, or an InputError naming it. */
export async function requireDir(path: string, role: string): Promise<string> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const e = asReadError(err, path);
    throw new InputError(`${role} ${e.message}`, { file: path, hint: e.hint ?? 'check the path', cause: err });
  }
  if (!info.isDirectory()) throw new InputError(`${role} is not a folder`, { file: path, hint: 'pass a folder' });
  return realpath(path);
}

/** Resolves a path that may not exist yet through its nearest existing ancestor's real path. */
async function realpathLenient(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await realpath(absolute);
  } catch {
    const parent = dirname(absolute);
    if (parent === absolute) return absolute;
    return join(await realpathLenient(parent), basename(absolute));
  }
}

function isSameOrInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/** Output folders that would overwrite or mix with the inputs are refused. */
export async function checkOutputDir(outputDir: string, inputs: { path: string; role: string }[]): Promise<string> {
  const out = await realpathLenient(outputDir);
  for (const input of inputs) {
    if (isSameOrInside(out, input.path)) {
      throw new InputError(`output folder is ${out === input.path ? 'the same as' : 'inside'} the ${input.role} (${input.path})`, {
        file: outputDir,
        hint: 'choose an output folder outside the input folders',
      });
    }
  }
  return out;
}

