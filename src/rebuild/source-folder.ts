/**
 * Where a rebuild reads LLaMA from: a local folder, or a Hub folder read with ranged requests
 * (plan/hub-rebuild-folder.ts). Tensor readers see one shape of file either way: reads at an
 * offset, a size, a close.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** The part of a file handle the tensor readers use. */
export interface RandomFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

export interface SourceFolder {
  /** What users see: the path, or the hf:// address. */
  readonly label: string;
  /** Set for a folder on disk: its path. */
  readonly local: string | undefined;
  names(): Promise<string[]>;
  /** A file's display path. */
  pathOf(name: string): string;
  /** A small file whole (params.json, config.json, tokenizer.model), or undefined when absent. */
  readSmall(name: string): Promise<Buffer | undefined>;
  open(name: string): Promise<RandomFile>;
  /** Meta ships tokenizer.model beside the size folders: the folder above, where there is one. */
  parent(): SourceFolder | undefined;
}

const SMALL_BYTES = 64 << 20;

export class LocalFolder implements SourceFolder {
  constructor(readonly local: string) {}

  get label(): string {
    return this.local;
  }

  async names(): Promise<string[]> {
    return readdir(this.local).catch(() => [] as string[]);
  }

  pathOf(name: string): string {
    return join(this.local, name);
  }

  async readSmall(name: string): Promise<Buffer | undefined> {
    const path = this.pathOf(name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile() || info.size > SMALL_BYTES) return undefined;
    return readFile(path).catch(() => undefined);
  }

  async open(name: string): Promise<RandomFile> {
    return openFile(this.pathOf(name));
  }

  parent(): SourceFolder | undefined {
    const up = dirname(this.local);
    return up === this.local ? undefined : new LocalFolder(up);
  }
}

/** A file on disk as a RandomFile. */
export async function openFile(path: string): Promise<RandomFile> {
  const handle = await open(path, 'r');
  return { read: (b, o, l, p) => handle.read(b, o, l, p), stat: async () => ({ size: (await handle.stat()).size }), close: () => handle.close() };
}

export function folderOf(source: string | SourceFolder): SourceFolder {
  return typeof source === 'string' ? new LocalFolder(source) : source;
}
