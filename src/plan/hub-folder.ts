/**
 * An XOR folder on the Hugging Face Hub (hf://owner/name[@revision]/folder): its revision resolved
 * to one commit at the start, used for every request of the run; its files listed at that commit,
 * with their sizes and LFS SHA-256. Nothing is stored: planning reads only the first bytes it needs.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { readInput } from '../input-files.js';
import { HubClient, type HubFile } from '../hub/client.js';
import { formatHfUrl, type HfSource } from '../hub/hf-url.js';
import { HubSource } from '../hub/hub-source.js';
import { hubSettings } from '../hub/settings.js';
import type { XorEntry } from './entries.js';

export interface HubFolder {
  source: HfSource;
  commit: string;
  client: HubClient;
  files: Map<string, HubFile>;
  /** By file name: its blob in the local cache, when the cache has it (looked up once, at listing). */
  cached: Map<string, string>;
  /** Small files a probe read whole (and that matched the listing, where it gives a digest): not fetched again. */
  wholeFiles: Map<string, Buffer>;
}

/** A file up to this size that a probe reads whole is kept for the rest of the run. */
const WHOLE_FILE_BYTES = 4 << 20;
const WEIGHTS = /\.(bin|safetensors|pt|pth|ckpt|gguf)$/i;

/** The first `max` bytes of a Hub file (one ranged request). */
export async function readHubHead(folder: HubFolder, file: HubFile, max: number): Promise<Buffer> {
  const whole = folder.wholeFiles.get(file.name);
  if (whole) return whole.subarray(0, Math.min(max, whole.length));
  const end = Math.min(max, file.size);
  const source = new HubSource(folder.client, folder.source.repo, folder.commit, file, hubFilePath(folder, file), undefined, 0, end);
  try {
    const buf = Buffer.alloc(end);
    const n = await source.read(buf, buf.length);
    // A side file (config, tokenizer) read whole is the run's copy; weights are always fetched to be decoded.
    if (n === file.size && file.size <= WHOLE_FILE_BYTES && !WEIGHTS.test(file.name) && source.integrity() !== 'differs') folder.wholeFiles.set(file.name, buf);
    return buf.subarray(0, n);
  } finally {
    await source.close();
  }
}

export function hubFilePath(folder: HubFolder, file: HubFile): string {
  return formatHfUrl({ ...folder.source, revision: folder.commit, path: '' }, file.path);
}

/** The repository's folder in the Hugging Face cache (huggingface_hub's layout). */
export function cacheRepoDir(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.replace('/', '--')}`);
}

/**
 * HF_HUB_OFFLINE=1: the source's folder in the local cache's snapshot for the revision (refs/<revision>
 * names its commit), to be decoded as a local folder; exit 2 naming what is missing otherwise.
 */
export async function offlineSnapshot(source: HfSource): Promise<string> {
  const settings = hubSettings();
  const repoDir = cacheRepoDir(settings.cacheDir, source.repo);
  const named = /^[0-9a-f]{40}$/.test(source.revision) ? source.revision : (await readFile(join(repoDir, 'refs', source.revision), 'utf8').catch(() => '')).trim();
  // A ref names a commit; anything else in it (a path, say) is not followed.
  const commit = /^[0-9a-f]{40}$/.test(named) ? named : '';
  const folder = join(repoDir, 'snapshots', commit, source.path);
  if (!commit || !(await stat(folder).catch(() => undefined))?.isDirectory()) {
    // Without a commit there is no snapshot folder to name: the ref that would give one is what is missing.
    throw new InputError(`HF_HUB_OFFLINE is set and the cache has no snapshot of ${formatHfUrl(source)}`, {
      file: commit ? folder : join(repoDir, 'refs', source.revision),
      hint: 'download it first (unset HF_HUB_OFFLINE), or point HF_HUB_CACHE / HF_HOME at the cache that has it',
    });
  }
  return folder;
}

/** A blob already in the local cache under the file's LFS SHA-256, of the listed size: no need to download it. */
async function cachedBlob(cacheDir: string, repo: string, file: HubFile): Promise<string | undefined> {
  if (!file.lfsSha256 || !/^[0-9a-f]{64}$/.test(file.lfsSha256)) return undefined;
  const path = join(cacheRepoDir(cacheDir, repo), 'blobs', file.lfsSha256);
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() && info.size === file.size ? path : undefined;
}

export async function openHubFolder(source: HfSource): Promise<{ folder: HubFolder; entries: XorEntry[] }> {
  const settings = hubSettings();
  const client = new HubClient(settings);
  const commit = await client.resolveCommit(source.repo, source.revision);
  const listed = await client.listFolder(source, commit);
  const cached = new Map<string, string>();
  for (const file of listed) {
    const blob = await cachedBlob(settings.cacheDir, source.repo, file);
    if (blob) cached.set(file.name, blob);
  }
  const folder: HubFolder = { source, commit, client, files: new Map(listed.map((f) => [f.name, f])), cached, wholeFiles: new Map() };
  const entries = listed.map((file) => ({
    name: file.name,
    path: hubFilePath(folder, file),
    size: file.size,
    read: async (max: number) => {
      const blob = cached.get(file.name);
      return blob ? (await readInput(blob, max)).bytes : readHubHead(folder, file, max);
    },
  }));
  return { folder, entries };
}
