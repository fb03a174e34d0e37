/**
 * Layout mistakes caught before decoding: a Hugging Face cache model root instead of a snapshot, a
 * repository root instead of its XOR folder, and XOR and base folders swapped (XOR commutes, so a
 * swapped run would otherwise "succeed" with wrong JSON files and no added_tokens.json).
 */
import { readdir, stat } from 'node:fs/promises';
import { readInput } from '../input-files.js';
import { basename, join } from 'node:path';
import { readHead } from '../codec/sources.js';
import { InputError } from '../errors.js';
import { looksLikeCheckpoint } from '../release/file-structure.js';

/** Files that carry weights: a folder holding some of these is a model folder. */
const WEIGHT_FILE = /\.(bin|safetensors|model|pt|pth)$/i;

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() === true;
}

/**
 * `models--Org--name` in a Hugging Face cache holds refs/ and snapshots/: the files are in the
 * snapshot refs/main names. Returns the folder to use and a note saying so, or the folder itself.
 */
export async function resolveCacheRoot(dir: string, role: string): Promise<{ dir: string; note?: string }> {
  if (!basename(dir).startsWith('models--') || !(await isDir(join(dir, 'snapshots')))) return { dir };
  const commit = (await readInput(join(dir, 'refs', 'main'), 256).then((r) => r.bytes.toString('utf8'), () => '')).trim();
  const snapshot = join(dir, 'snapshots', commit);
  // refs/main names a commit; a path written there is not followed out of the cache.
  if (/^[0-9a-f]{40}$/.test(commit) && (await isDir(snapshot))) {
    return { dir: snapshot, note: `${role} ${dir} is a Hugging Face cache model folder; using its snapshot for refs/main, ${snapshot}` };
  }
  const snapshots = (await readdir(join(dir, 'snapshots')).catch(() => [] as string[])).sort();
  throw new InputError(`is a Hugging Face cache model folder whose refs/main names no snapshot`, {
    file: dir,
    hint: snapshots.length > 0 ? `pass a snapshot as the ${role}, e.g. ${join(dir, 'snapshots', snapshots[0]!)}` : 'download the model again',
  });
}

/** A repository root passed as the XOR folder: it has no weight files, but a subfolder that does. */
export async function refuseRepositoryRoot(xorDir: string): Promise<void> {
  const entries = await readdir(xorDir, { withFileTypes: true }).catch(() => []);
  if (entries.some((e) => !e.isDirectory() && WEIGHT_FILE.test(e.name))) return;
  for (const e of entries) {
    if (e.name.startsWith('.') || !(e.isDirectory() || e.isSymbolicLink())) continue;
    const sub = join(xorDir, e.name);
    if (!(await isDir(sub))) continue;
    const inner = await readdir(sub).catch(() => [] as string[]);
    if (inner.some((n) => WEIGHT_FILE.test(n))) {
      throw new InputError('looks like the repository root, not the folder of XOR files', {
        file: xorDir,
        hint: `pass ${sub} as <xor-dir>`,
      });
    }
  }
}

/**
 * The XOR and base folders look swapped when every checkpoint shard the two share starts like a
 * checkpoint on the XOR side and not on the base side. A real XOR payload of a checkpoint starts with
 * zero bytes (base and fine-tune share their first bytes), and a real base is a checkpoint.
 */
export async function refuseSwapped(
  pairs: readonly { name: string; payloadPath: string; basePath: string }[],
  xorDir: string,
  baseDir: string,
): Promise<void> {
  const shards = pairs.filter((p) => p.name.toLowerCase().endsWith('.bin'));
  if (shards.length === 0) return;
  for (const p of shards) {
    const [payload, base] = await Promise.all([readHead(p.payloadPath, 8), readHead(p.basePath, 8)]);
    if (!looksLikeCheckpoint(payload) || looksLikeCheckpoint(base)) return;
  }
  throw new InputError('the XOR and base folders look swapped: the XOR files start like PyTorch checkpoints and the base files do not', {
    file: xorDir,
    hint: `pass the release's XOR folder second and the LLaMA base third: decode <output-dir> ${baseDir} ${xorDir}`,
  });
}
