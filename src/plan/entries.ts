/**
 * What each entry of the XOR folder is, and how its file is produced. Inputs are regular files:
 * FIFOs, devices and sockets are refused (exit 2), broken links are named, folders are reported as
 * not decoded, and a name that is not valid UTF-8 is refused rather than skipped.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { inflatesAsGzip } from '../codec/sources.js';
import { readInput } from '../input-files.js';
import { asReadError, InputError } from '../errors.js';

/** xor: payload XOR base; xor-gzip: the payload is gunzipped first; copy: a plain JSON payload is the file. */
export type FileAction = 'xor' | 'xor-gzip' | 'copy';

/** A JSON file larger than this is not a config; it is XORed without trying to parse it. */
const MAX_JSON_PROBE_BYTES = 64 << 20;
/** Enough of a gzip stream to tell it from raw bytes that merely start like one. */
const GZIP_PROBE_BYTES = 64 << 10;

/** The names in a folder; a name that is not valid UTF-8 cannot be named back to the system here. */
export async function folderNames(dir: string): Promise<string[]> {
  let raw: Buffer[];
  try {
    raw = await readdir(dir, { encoding: 'buffer' });
  } catch (err) {
    throw asReadError(err, dir, 'folder');
  }
  return raw.map((bytes) => {
    const name = bytes.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(bytes)) {
      throw new InputError(`holds a file whose name is not valid UTF-8 (${JSON.stringify(bytes.toString('latin1'))})`, {
        file: dir,
        hint: 'rename that file (its name must match the published file names)',
      });
    }
    return name;
  });
}

/** An input's size; undefined when it does not exist; 'folder' for a folder. Anything else is refused. */
export async function inputSize(path: string, role: string): Promise<number | 'folder' | undefined> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw asReadError(err, path);
    if ((await lstat(path).catch(() => undefined))?.isSymbolicLink()) {
      throw new InputError(`${role} is a broken symbolic link`, {
        file: path,
        hint: 'the file it points to is missing (an interrupted download?); download it again',
      });
    }
    return undefined;
  }
  if (info.isDirectory()) return 'folder';
  if (!info.isFile()) {
    const kind = info.isFIFO() ? 'a FIFO' : info.isSocket() ? 'a socket' : 'a device';
    throw new InputError(`${role} is ${kind}, not a regular file`, { file: path, hint: 'only regular files are read; put the file itself there' });
  }
  return info.size;
}

function parsesAsJson(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/** How a payload becomes its output: XORed, gunzipped and XORed, or copied (plain JSON). */
export async function chooseAction(
  name: string,
  /** The payload's first bytes, at most `max` of them (never more than its planned size). */
  read: (max: number) => Promise<Buffer>,
  payloadSize: number,
  baseSize: number | undefined,
): Promise<{ action: FileAction; note: string | undefined }> {
  if (inflatesAsGzip(await read(Math.min(GZIP_PROBE_BYTES, payloadSize)))) return { action: 'xor-gzip', note: undefined };
  if (payloadSize > 0 && payloadSize <= MAX_JSON_PROBE_BYTES && (name.endsWith('.json') || baseSize === undefined)) {
    // Read at most the planned size: a file that grew since is not followed.
    const bytes = await read(payloadSize);
    if (parsesAsJson(bytes)) {
      return { action: 'copy', note: baseSize === undefined ? 'plain JSON with no base counterpart, copied' : 'plain JSON payload, copied' };
    }
  }
  return { action: 'xor', note: undefined };
}

/** An entry of the XOR folder, wherever it lives: its name, size, and a way to read its first bytes. */
export interface XorEntry {
  name: string;
  /** What users see: a path, or an hf:// address. */
  path: string;
  size: number | 'folder' | undefined;
  read: (max: number) => Promise<Buffer>;
}

/** The entries of a local XOR folder. */
export async function localEntries(dir: string): Promise<XorEntry[]> {
  const entries: XorEntry[] = [];
  for (const name of await folderNames(dir)) {
    const path = join(dir, name);
    const hidden = name.startsWith('.');
    entries.push({ name, path, size: hidden ? undefined : await inputSize(path, 'XOR file'), read: async (max) => (await readInput(path, max)).bytes });
  }
  return entries;
}
