/**
 * A Hub folder listing, checked before any of it is used: it comes from a server, and its paths,
 * names, sizes and LFS object ids become request paths, cache paths and output names.
 */
import { InputError } from '../errors.js';
import { unsafeNameReason } from '../file-names.js';
import type { HfSource } from './hf-url.js';

export interface HubFile {
  /** Path in the repository. */
  path: string;
  /** Its last path segment. */
  name: string;
  size: number;
  /** For LFS files: the SHA-256 of the content (the listing's lfs.oid). */
  lfsSha256: string | undefined;
}

/** What the listing gives for one entry (the fields read here). */
export interface ListedEntry {
  type: string;
  path: unknown;
  size: unknown;
  lfs?: { oid?: unknown; size?: unknown; pointerSize?: unknown } | undefined;
}

function refuse(what: string, why: string): never {
  throw new InputError(`the Hub's listing of ${what} ${why}`, { hint: 'the listing is not what the Hub sends; check HF_ENDPOINT' });
}

/** The files directly in the requested folder, each checked; the listing is refused whole otherwise. */
export function checkListing(entries: readonly ListedEntry[], source: HfSource, what: string): HubFile[] {
  const prefix = source.path ? `${source.path}/` : '';
  const files: HubFile[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    if (typeof e.path !== 'string') refuse(what, 'has an entry without a path');
    const shown = JSON.stringify(e.path.slice(0, 200));
    // Which of two entries would be read is not the Hub's to leave open.
    if (seen.has(e.path)) refuse(what, `has ${shown} twice`);
    seen.add(e.path);
    if (!e.path.startsWith(prefix)) refuse(what, `has ${shown}, outside the folder asked for`);
    if (e.path.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) refuse(what, `has ${shown}, with an empty, "." or ".." segment`);
    if (e.type !== 'file') continue;
    const name = e.path.slice(prefix.length);
    const why = unsafeNameReason(name);
    if (why) refuse(what, `names the file ${shown}, which is not one plain file name (${why})`);
    const size = e.lfs ? e.lfs.size : e.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) refuse(what, `gives ${shown} the size ${JSON.stringify(size)}`);
    // An LFS entry's own size is the file's or, in some answers, its pointer's; nothing else.
    if (e.lfs && e.size !== e.lfs.size && e.size !== e.lfs.pointerSize) refuse(what, `gives ${shown} two sizes (${JSON.stringify(e.size)} and LFS ${JSON.stringify(e.lfs.size)})`);
    const oid = e.lfs?.oid;
    if (e.lfs && (typeof oid !== 'string' || !/^[0-9a-f]{64}$/.test(oid))) refuse(what, `gives ${shown} the LFS object id ${JSON.stringify(oid)}, which is not a SHA-256`);
    files.push({ path: e.path, name, size, lfsSha256: e.lfs ? (oid as string) : undefined });
  }
  return files;
}
