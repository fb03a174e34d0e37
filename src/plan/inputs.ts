/**
 * Input and output folders: that inputs exist and are folders, that the output folder cannot
 * overwrite or mix with an input, and which files in an input folder are checksum lists, not data.
 */
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { asReadError, InputError } from '../errors.js';
import { stateDir } from '../output/temp-file.js';

/** The order of decode's folders, spelled out wherever a folder looks given in the wrong place. */
export const ARGUMENT_ORDER = 'decode <output-dir> <xor-dir> <base-dir>';

/**
 * An output folder holding files this tool did not write where outputs would go: an input given
 * first, or someone else's files. Never answered with --force, which replaces only our own outputs.
 */
export function foreignOutputs(outputDir: string, names: readonly string[]): InputError {
  const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '');
  return new InputError(`holds ${names.length === 1 ? 'a file' : `${names.length} files`} that metharme-xor did not write (${shown}), which this decode would replace`, {
    file: outputDir,
    hint: `the output folder must be new, empty, or one an earlier decode wrote; if it is the XOR or base folder, the order is: ${ARGUMENT_ORDER}`,
  });
}

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
    const e = asReadError(err, path, 'folder');
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

/** A folder's identity: a bind mount or a link reaches the same (device, inode) by another path. */
async function identityOf(path: string): Promise<string | undefined> {
  const info = await stat(path, { bigint: true }).catch(() => undefined);
  return info ? `${info.dev}:${info.ino}` : undefined;
}

/**
 * Output folders that would overwrite or mix with the inputs are refused, whatever path reaches them:
 * the output folder and each of its existing ancestors are compared with the input folders by device
 * and inode, so a bind mount, a symlink or a second mount of the same folder is seen for what it is.
 */
export async function checkOutputDir(outputDir: string, inputs: { path: string; role: string }[]): Promise<string> {
  const out = await realpathLenient(outputDir);
  const existing = await stat(out).catch(() => undefined);
  if (existing && !existing.isDirectory()) {
    throw new InputError('is a file, not a folder', { file: outputDir, hint: 'pass a folder for the outputs (it is created if missing)' });
  }
  const inputIds = await Promise.all(inputs.map(async (input) => ({ ...input, id: await identityOf(input.path) })));
  let dir = out;
  for (let depth = 0; ; depth++) {
    const id = await identityOf(dir);
    const hit = id === undefined ? undefined : inputIds.find((input) => input.id === id);
    if (hit) {
      throw new InputError(`output folder is ${depth === 0 && dir === out && existing ? 'the same as' : 'inside'} the ${hit.role} (${hit.path})`, {
        file: outputDir,
        hint: 'choose an output folder outside the input folders',
      });
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return out;
}

/**
 * An input folder that a decode wrote (it holds this tool's state): the output folder was given in
 * an input's place, most often last (`decode <xor-dir> <base-dir> <output-dir>`).
 */
export async function refuseOutputAsInput(dir: string, role: string): Promise<void> {
  const state = await stat(join(stateDir(dir), 'state.json')).catch(() => undefined);
  if (!state) return;
  throw new InputError(`${role} is an output folder of metharme-xor (it holds ${join(stateDir(dir), 'state.json')}); was the output folder given last?`, {
    file: dir,
    hint: `the order is: ${ARGUMENT_ORDER}`,
  });
}
