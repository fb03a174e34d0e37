/**
 * Evidence about the inputs of a failed file: is the XOR file the one that was published, and is the
 * base file the one the release was made against? Each answer comes from a digest someone published
 * (a checksum list, the Hugging Face cache's blob names, a git-lfs pointer), never from a guess.
 */
import { execFile } from 'node:child_process';
import { lstat, readlink } from 'node:fs/promises';
import { basename, relative } from 'node:path';
import type { Pipeline } from '../codec/pipeline.js';
import type { DigestList } from '../release/expectations.js';
import type { ManifestEntry } from '../release/manifest.js';
import { repositoryOf } from '../plan/lfs.js';
import type { Digests, Integrity } from '../types.js';
import { findMatch, primaryAlgorithm } from './digests.js';
import { hashFile, type HashOptions } from './hash-file.js';


/** What was published for an XOR file: its SHA-256, where that was read, and its size when known. */
export interface PublishedPayload {
  sha256: string;
  source: string;
  size?: number | undefined;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Hugging Face cache: snapshots/<rev>/<file> is a link to blobs/<sha256 of the content>. */
async function fromHfCache(path: string): Promise<PublishedPayload | undefined> {
  const info = await lstat(path).catch(() => undefined);
  if (!info?.isSymbolicLink()) return undefined;
  const target = await readlink(path).catch(() => '');
  const name = basename(target);
  if (!SHA256_HEX.test(name) || !/(^|[\\/])blobs[\\/]/.test(target)) return undefined;
  return { sha256: name, source: 'the Hugging Face cache (the blob is named by its SHA-256)' };
}

function git(args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', args, { timeout: 10_000, maxBuffer: 1 << 16 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

/** Parses a git-lfs pointer: its SHA-256 and size. */
export function parseLfsPointer(text: string): { sha256: string; size: number } | undefined {
  if (!text.startsWith('version https://git-lfs.github.com/spec/')) return undefined;
  const oid = /^oid sha256:([0-9a-f]{64})$/m.exec(text)?.[1];
  const size = /^size (\d+)$/m.exec(text)?.[1];
  return oid && size ? { sha256: oid, size: Number(size) } : undefined;
}

/** A git-lfs clone: the repository stores a pointer (SHA-256 and size) where the working tree has the data. */
async function fromGitLfs(path: string): Promise<PublishedPayload | undefined> {
  const repo = await repositoryOf(path);
  const rel = relative(repo, path).split('\\').join('/');
  if (rel.startsWith('..')) return undefined;
  for (const object of [`:${rel}`, `HEAD:${rel}`]) {
    const text = await git(['-C', repo, 'cat-file', '-p', object]);
    const pointer = text ? parseLfsPointer(text) : undefined;
    if (pointer) return { sha256: pointer.sha256, size: pointer.size, source: `the git-lfs pointer in ${repo}` };
  }
  return undefined;
}

/** The published SHA-256 of an XOR file, from a checksum list first, else the cache or clone it lives in. */
export async function publishedPayload(path: string, name: string, list: DigestList | undefined): Promise<PublishedPayload | undefined> {
  const listed = list?.byName.get(name)?.find((e) => e.algorithm === 'sha256');
  if (listed) return { sha256: listed.digest, source: list!.label };
  // A Hub file's digest comes with its listing, checked while it streams; no local copy to look at.
  if (path.startsWith('hf://')) return undefined;
  return (await fromHfCache(path)) ?? (await fromGitLfs(path));
}

export async function checkPayload(
  pipeline: Pipeline,
  path: string,
  published: PublishedPayload | undefined,
  hash: HashOptions,
): Promise<Integrity> {
  if (!published) return 'unknown';
  const { digests } = await hashFile(pipeline, path, ['sha256'], hash);
  return digests.sha256 === published.sha256 ? 'intact' : 'differs';
}

/** Judges a base file's digests against the list of base digests, where the list names the file. */
export function judgeBaseDigests(entries: readonly ManifestEntry[] | undefined, digests: Digests): Integrity {
  if (!entries || entries.length === 0) return 'unknown';
  // One rule with the outputs' (findMatch): the strongest algorithm listed decides; not computed, it decides nothing.
  const strongest = primaryAlgorithm(entries)!;
  if (digests[strongest] === undefined) return 'unknown';
  return findMatch(entries, digests) ? 'intact' : 'differs';
}
