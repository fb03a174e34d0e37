/**
 * A Hub folder as a rebuild's source: LLaMA held on the Hub in another layout (safetensors, say)
 * read tensor by tensor with ranged requests at the folder's commit, through the same client,
 * token, cache and offline rules as every other Hub file. A blob the local cache has is read
 * from disk. Nothing is downloaded whole and nothing is stored.
 */
import { readFile, stat } from 'node:fs/promises';
import { HubSource } from '../hub/hub-source.js';
import type { HubFile } from '../hub/client.js';
import { openFile, type RandomFile, type SourceFolder } from '../rebuild/source-folder.js';
import { hubFilePath, readHubHead, type HubFolder } from './hub-folder.js';

const SMALL_BYTES = 64 << 20;
/** A jump to another place opens a request for this much (or what the read wants). */
const RUN_BYTES = 64 << 20;

/** Reads at any offset: a read where the last one ended goes on on the same connection; a jump opens another. */
class HubRandomFile implements RandomFile {
  private source: HubSource | undefined;
  private at = -1;
  /** Where the open request's range ends. */
  private until = 0;

  constructor(
    private readonly folder: HubFolder,
    private readonly file: HubFile,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (!this.source || this.at !== position || position >= this.until) {
      await this.source?.close();
      const { client, source, commit } = this.folder;
      // The blob's digest is the listing's: tensors read in pieces are judged by the rebuilt files' digests instead.
      // Bounded (a tensor is read in order, then the next one elsewhere): no CDN pushes past what is read.
      const end = Math.min(this.file.size, position + Math.max(length, RUN_BYTES));
      this.source = new HubSource(client, source.repo, commit, this.file, hubFilePath(this.folder, this.file), this.signal, position, end).leaveHashing();
      this.until = end;
      this.at = position;
    }
    const bytesRead = await this.source.read(buffer.subarray(offset, offset + length), length);
    this.at += bytesRead;
    return { bytesRead };
  }

  async stat(): Promise<{ size: number }> {
    return { size: this.file.size };
  }

  async close(): Promise<void> {
    await this.source?.close();
    this.source = undefined;
  }
}

export class HubRebuildFolder implements SourceFolder {
  readonly local = undefined;

  constructor(
    private readonly folder: HubFolder,
    /** The hf:// address the user gave. */
    readonly label: string,
    private readonly signal?: AbortSignal,
  ) {}

  async names(): Promise<string[]> {
    return [...this.folder.files.keys()];
  }

  pathOf(name: string): string {
    const file = this.folder.files.get(name);
    return file ? hubFilePath(this.folder, file) : `${this.label.replace(/\/$/, '')}/${name}`;
  }

  async readSmall(name: string): Promise<Buffer | undefined> {
    const file = this.folder.files.get(name);
    if (!file || file.size > SMALL_BYTES) return undefined;
    const cached = this.folder.cached.get(name);
    if (cached) return readFile(cached);
    return readHubHead(this.folder, file, file.size);
  }

  async open(name: string): Promise<RandomFile> {
    const file = this.folder.files.get(name);
    if (!file) throw new Error(`${name} is not in the listing of ${this.label}`);
    const cached = this.folder.cached.get(name);
    if (cached && (await stat(cached).catch(() => undefined))?.size === file.size) return openFile(cached);
    return new HubRandomFile(this.folder, file, this.signal);
  }

  parent(): SourceFolder | undefined {
    return undefined;
  }
}
