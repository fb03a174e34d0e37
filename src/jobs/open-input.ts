/** Opening a payload or base file where it is: its blob in the local Hugging Face cache, on the Hub, or on disk. */
import { FileSource, GzipSource, MemorySource, type ByteSource } from '../codec/sources.js';
import { HubSource } from '../hub/hub-source.js';
import type { FilePlan, HubInput } from '../plan/plan.js';
import type { RebuildInput } from '../rebuild/rebuild-input.js';

/** `path`: the local path, or the hf:// address users see for a Hub file; read from `start` on. */
export async function openInput(path: string, size: number | undefined, hub: HubInput | undefined, signal?: AbortSignal, start = 0, rebuild?: RebuildInput): Promise<ByteSource> {
  // The rebuild's room is loaded by a run that rebuilds a base only.
  if (rebuild) return (await import('../rebuild/rebuild-plan.js')).openRebuilt(path, rebuild, start);
  if (hub?.cached) return FileSource.open(hub.cached, { limit: size, start });
  // Read whole by a probe already (a config, a tokenizer): not fetched again.
  const whole = hub?.folder.wholeFiles.get(hub.file.name);
  if (whole) return new MemorySource(path, whole, start);
  if (hub) return new HubSource(hub.folder.client, hub.folder.source.repo, hub.folder.commit, hub.file, path, signal, start);
  return FileSource.open(path, { limit: size, start });
}

/** A file's payload; `start`: a resumed file is read (or fetched) from there on, a gzip payload always from its first byte. */
export async function openPayload(file: FilePlan, signal: AbortSignal, start = 0): Promise<ByteSource> {
  if (file.action !== 'xor-gzip') return openInput(file.payloadPath, file.payloadSize, file.hub, signal, start, file.payloadRebuild);
  return file.hub ? GzipSource.over(await openInput(file.payloadPath, file.payloadSize, file.hub, signal)) : GzipSource.open(file.payloadPath);
}
