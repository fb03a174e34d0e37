/**
 * Meta's `checklist.chk` (md5sum lines for params.json and each consolidated.NN.pth): the digests
 * of the original files. A rebuilt base is proven by its own published digest; when it fails, the
 * checklist names the damaged original, so it is read then (and costs nothing on success).
 */
import { join } from 'node:path';
import type { Pipeline } from '../codec/pipeline.js';
import type { TensorOrigin } from '../rebuild/rebuild-input.js';
import { loadManifestFile } from '../release/expectations.js';
import type { Diagnosis } from '../types.js';
import { hashFile, type HashOptions } from './hash-file.js';

export const CHECKLIST = 'checklist.chk';

/** What the checklist says of the Meta files a rebuild read: one line per damaged file, or that all match. */
export async function checkMetaFiles(pipeline: Pipeline, dir: string, origin: TensorOrigin, hash: HashOptions = {}): Promise<Diagnosis[]> {
  if (origin.kind !== 'meta') return [];
  const path = join(dir, CHECKLIST);
  const manifest = await loadManifestFile(path).catch(() => undefined);
  if (!manifest) return [];
  const md5 = new Map(manifest.entries.filter((e) => e.algorithm === 'md5').map((e) => [e.name, e.digest]));
  const bad: string[] = [];
  const checked: string[] = [];
  for (const name of ['params.json', ...origin.files]) {
    const want = md5.get(name);
    if (!want) continue;
    const { digests } = await hashFile(pipeline, join(dir, name), ['md5'], hash).catch(() => ({ digests: {} as Record<string, string> }));
    checked.push(name);
    if (digests.md5 !== want) bad.push(name);
  }
  if (bad.length > 0) {
    return bad.map((name) => ({ code: 'base-not-published', message: `${join(dir, name)} does not match ${path} (MD5): this original is damaged; download it again` }));
  }
  if (checked.length === 0) return [];
  return [{ code: 'base-is-published', message: `${checked.join(', ')} match ${path} (MD5): Meta's files are intact, so they are not the LLaMA size or model the release was made from` }];
}
