/**
 * git-lfs pointers: a repository cloned without git-lfs holds ~130-byte text files in place of the
 * data ("version https://git-lfs.github.com/spec/v1", "oid sha256:...", "size ..."). Decoding
 * against them produces garbage of the wrong size, so they are refused before anything is written.
 */
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readHead } from '../codec/sources.js';

const POINTER_PREFIX = 'version https://git-lfs.github.com/spec/';
/** The spec caps pointer files at 1024 bytes. */
const MAX_POINTER_BYTES = 1024;

export async function isLfsPointer(path: string, size: number): Promise<boolean> {
  if (size > MAX_POINTER_BYTES || size < POINTER_PREFIX.length) return false;
  const head = await readHead(path, POINTER_PREFIX.length);
  return head.toString('latin1') === POINTER_PREFIX;
}

/** The git repository a file belongs to (nearest folder with .git), else the file's folder. */
export async function repositoryOf(path: string): Promise<string> {
  let dir = dirname(path);
  for (;;) {
    const found = await stat(join(dir, '.git')).then(
      () => true,
      () => false,
    );
    if (found) return dir;
    const parent = dirname(dir);
    if (parent === dir) return dirname(path);
    dir = parent;
  }
}

export function lfsHint(repository: string): string {
  return `the repository was cloned without git-lfs; run "git lfs install && git lfs pull" in ${repository}`;
}
