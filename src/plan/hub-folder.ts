/**
 * An XOR folder on the Hugging Face Hub (hf://owner/name[@revision]/folder): its revision resolved
 * to one commit at the start, used for every request of the run; its files listed at that commit,
 * with their sizes and LFS SHA-256. Nothing is stored: planning reads only the first bytes it needs.
 */
import { InputError } from '../errors.js';
import { HubClient, type HubFile } from '../hub/client.js';
import { formatHfUrl, parseHfUrl, type HfSource } from '../hub/hf-url.js';
import { HubSource } from '../hub/hub-source.js';
import { hubSettings } from '../hub/settings.js';
import type { XorEntry } from './entries.js';

export interface HubFolder {
  source: HfSource;
  commit: string;
  client: HubClient;
  files: Map<string, HubFile>;
}

/** The first `max` bytes of a Hub file (one ranged request). */
export async function readHubHead(folder: HubFolder, file: HubFile, max: number): Promise<Buffer> {
  const source = new HubSource(folder.client, folder.source.repo, folder.commit, file, hubFilePath(folder, file));
  try {
    const buf = Buffer.alloc(Math.min(max, file.size));
    const n = await source.read(buf, buf.length);
    return buf.subarray(0, n);
  } finally {
    await source.close();
  }
}

export function hubFilePath(folder: HubFolder, file: HubFile): string {
  return formatHfUrl({ ...folder.source, revision: folder.commit, path: '' }, file.path);
}

export async function openHubFolder(text: string): Promise<{ folder: HubFolder; entries: XorEntry[] }> {
  const settings = hubSettings();
  if (settings.offline) {
    throw new InputError('HF_HUB_OFFLINE is set, and this version reads hf:// sources only from the network', {
      file: text,
      hint: 'pass the snapshot folder in your Hugging Face cache instead (models--<owner>--<name>/snapshots/<commit>/...)',
    });
  }
  const source = parseHfUrl(text);
  const client = new HubClient(settings);
  const commit = await client.resolveCommit(source.repo, source.revision);
  const listed = await client.listFolder(source, commit);
  const folder: HubFolder = { source, commit, client, files: new Map(listed.map((f) => [f.name, f])) };
  const entries = listed.map((file) => ({
    name: file.name,
    path: hubFilePath(folder, file),
    size: file.size,
    read: (max: number) => readHubHead(folder, file, max),
  }));
  return { folder, entries };
}
