/**
 * A stand-in for the Hugging Face Hub's HTTP contract, as a real server on 127.0.0.1 (shared/reference/
 * hub-http.md): revision -> commit, the tree API (paged with Link), resolve with a 302 to a signed CDN
 * path carrying X-Repo-Commit / X-Linked-Size / X-Linked-Etag, ranges with 206 and Content-Range,
 * 404s with X-Error-Code, 401 for a gated repository without a token. Faults are queued per file.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { NO_PROXY_ENV, removeDir, tempDir } from '../support/helpers.js';

/** `pass`: serve that request as it is (to aim the next fault at a later request). */
/** `stall`: half the body, then nothing more on an open connection. */
/** `content-coding`: the body sent gzip-encoded, as a proxy that ignores Accept-Encoding would. */
export type Fault = 'pass' | 'cut' | 'stall' | 'ignore-range' | 'cdn-403' | '429' | '500' | 'corrupt' | 'extra-bytes' | 'content-coding';

export interface StandInRepo {
  commit: string;
  /** Path in the repository -> content; paths ending in .bin are served as LFS files. */
  files: Map<string, Buffer>;
  gated?: boolean;
  token?: string;
  /** Paths whose listing gives a wrong LFS SHA-256 (an out-of-date listing). */
  wrongOid?: Set<string>;
  /** Rewrites the listing's entries (a hostile Hub), after paging. */
  listing?: (entries: Record<string, unknown>[]) => Record<string, unknown>[];
}

export interface Request {
  /** When it arrived (Date.now()). */
  at: number;
  method: string;
  url: string;
  range: string | undefined;
  authorization: string | undefined;
}

export class HubStandIn {
  readonly repos = new Map<string, StandInRepo>();
  readonly faults = new Map<string, Fault[]>();
  readonly requests: Request[] = [];
  /** Listing page size, so paging is exercised. */
  pageSize = 3;
  private server: Server | undefined;
  /** The same handler on another port: another origin, as the Hub's CDN is. */
  private cdnServer: Server | undefined;
  endpoint = '';
  cdnEndpoint = '';
  /** Redirect LFS files to the CDN on its own origin (default: a path of the Hub's origin). */
  separateCdn = false;

  /** `tls`: serve https with this certificate, as the real Hub and its CDN do. */
  async start(options: { tls?: { key: Buffer; cert: Buffer } } = {}): Promise<void> {
    const serve = () => (options.tls ? createTlsServer(options.tls, (req, res) => this.handle(req, res)) : createServer((req, res) => this.handle(req, res)));
    this.server = serve();
    this.cdnServer = serve();
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => this.cdnServer!.listen(0, '127.0.0.1', r));
    const scheme = options.tls ? 'https' : 'http';
    this.endpoint = `${scheme}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.cdnEndpoint = `${scheme}://127.0.0.1:${(this.cdnServer.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const server of [this.server, this.cdnServer]) {
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    }
  }

  /** A fresh Hub for the next test: no repositories, faults or recorded requests, the CDN on the Hub's origin. */
  reset(): void {
    this.repos.clear();
    this.faults.clear();
    this.requests.length = 0;
    this.separateCdn = false;
  }

  fault(path: string, ...faults: Fault[]): void {
    this.faults.set(path, [...(this.faults.get(path) ?? []), ...faults]);
  }

  private takeFault(path: string, kinds: Fault[]): Fault | undefined {
    const queue = this.faults.get(path) ?? [];
    const i = queue.findIndex((f) => kinds.includes(f));
    if (i < 0) return undefined;
    return queue.splice(i, 1)[0];
  }

  private error(res: ServerResponse, status: number, code?: string): void {
    res.writeHead(status, code ? { 'X-Error-Code': code } : {});
    res.end(JSON.stringify({ error: code ?? String(status) }));
  }

  private repoFor(req: IncomingMessage, res: ServerResponse, repo: string): StandInRepo | undefined {
    const r = this.repos.get(repo);
    if (!r) return this.error(res, 404, 'RepoNotFound'), undefined;
    if (r.gated && req.headers.authorization !== `Bearer ${r.token}`) return this.error(res, 401, 'GatedRepo'), undefined;
    return r;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url!, this.endpoint);
    this.requests.push({ at: Date.now(), method: req.method!, url: url.pathname + url.search, range: req.headers.range, authorization: req.headers.authorization });
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === 'api' && parts[1] === 'models') {
      const repo = `${parts[2]}/${parts[3]}`;
      const r = this.repoFor(req, res, repo);
      if (!r) return;
      if (parts[4] === 'revision') {
        if (parts[5] !== 'main' && parts[5] !== r.commit) return this.error(res, 404, 'RevisionNotFound');
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return void res.end(JSON.stringify({ id: repo, sha: r.commit }));
      }
      if (parts[4] === 'tree') {
        if (parts[5] !== r.commit) return this.error(res, 404, 'RevisionNotFound');
        const folder = parts.slice(6).join('/');
        const entries = [...r.files].filter(([p]) => (folder ? p.startsWith(`${folder}/`) : true) && !p.slice(folder ? folder.length + 1 : 0).includes('/'));
        if (folder && entries.length === 0) return this.error(res, 404, 'EntryNotFound');
        const start = Number(url.searchParams.get('cursor') ?? 0);
        const page = entries.slice(start, start + this.pageSize).map(([p, data]) => ({
          type: 'file',
          path: p,
          oid: createHash('sha1').update(data).digest('hex'),
          size: p.endsWith('.bin') ? 134 : data.length,
          ...(p.endsWith('.bin') ? { lfs: { oid: r.wrongOid?.has(p) ? 'f'.repeat(64) : createHash('sha256').update(data).digest('hex'), size: data.length, pointerSize: 134 } } : {}),
        }));
        const served = r.listing ? r.listing(page) : page;
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (start + this.pageSize < entries.length) headers.Link = `<${this.endpoint}${url.pathname}?expand=false&cursor=${start + this.pageSize}>; rel="next"`;
        res.writeHead(200, headers);
        return void res.end(JSON.stringify(served));
      }
    }
    if (parts[2] === 'resolve') {
      const repo = `${parts[0]}/${parts[1]}`;
      const r = this.repoFor(req, res, repo);
      if (!r) return;
      if (parts[3] !== r.commit) return this.error(res, 404, 'RevisionNotFound');
      const path = parts.slice(4).join('/');
      const data = r.files.get(path);
      if (!data) return this.error(res, 404, 'EntryNotFound');
      if (path.endsWith('.bin')) {
        const sha = createHash('sha256').update(data).digest('hex');
        res.writeHead(302, { Location: `${this.separateCdn ? this.cdnEndpoint : ''}/cdn/${repo}/${sha}?path=${encodeURIComponent(path)}&sig=${this.requests.length}`, 'X-Repo-Commit': r.commit, 'X-Linked-Size': String(data.length), 'X-Linked-Etag': `"${sha}"` });
        return void res.end();
      }
      return this.serve(req, res, path, data);
    }
    if (parts[0] === 'cdn') {
      const repo = this.repos.get(`${parts[1]}/${parts[2]}`);
      const path = url.searchParams.get('path') ?? '';
      const data = repo?.files.get(path);
      if (!data) return this.error(res, 404);
      if (this.takeFault(path, ['cdn-403'])) return this.error(res, 403);
      return this.serve(req, res, path, data);
    }
    this.error(res, 404, 'RepoNotFound');
  }

  private serve(req: IncomingMessage, res: ServerResponse, path: string, data: Buffer): void {
    const fault = this.takeFault(path, ['pass', 'cut', 'stall', 'ignore-range', '429', '500', 'corrupt', 'extra-bytes', 'content-coding']);
    if (fault === 'content-coding') {
      const packed = gzipSync(data);
      return void (res.writeHead(200, { 'Content-Encoding': 'gzip', 'Content-Length': String(packed.length) }), res.end(packed));
    }
    if (fault === '429') return void (res.writeHead(429, { 'Retry-After': '1' }), res.end());
    if (fault === '500') return this.error(res, 500);
    let body = Buffer.from(data);
    if (fault === 'corrupt') body[Math.floor(body.length / 2)] ^= 0xff;
    if (fault === 'extra-bytes') body = Buffer.concat([body, Buffer.from('more')]);
    // "bytes=N-" or "bytes=N-M", as a CDN serves them (M past the end means the end).
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m && fault !== 'ignore-range') {
      const start = Number(m[1]);
      const last = m[2] ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
      const extra = body.length - data.length;
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${last}/${data.length}`, 'Content-Length': String(last + 1 - start + (last === data.length - 1 ? extra : 0)) });
      body = body.subarray(start, last + 1 + (last === data.length - 1 ? extra : 0));
    } else {
      res.writeHead(200, { 'Content-Length': String(body.length) });
    }
    if (fault === 'cut') {
      // Half the body, then the connection drops.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
      return;
    }
    if (fault === 'stall') {
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      return;
    }
    res.end(body);
  }
}

/** The stand-in of a test file, and the temporary folder of the test that runs. */
export interface StandInTest {
  readonly hub: HubStandIn;
  readonly work: string;
}

/**
 * One stand-in for the test file (started before its tests, stopped after them), reset before each
 * test, which gets a temporary folder of its own, removed after it.
 */
export function useHubStandIn(): StandInTest {
  let hub: HubStandIn | undefined;
  let work: string | undefined;
  beforeAll(async () => {
    hub = new HubStandIn();
    await hub.start();
  });
  afterAll(() => hub?.stop());
  beforeEach(async () => {
    work = await tempDir();
    hub!.reset();
  });
  afterEach(() => removeDir(work!));
  return {
    get hub() {
      return hub!;
    },
    get work() {
      return work!;
    },
  };
}

/**
 * The environment for a CLI run against `hub`: its endpoint, an HF_HOME of its own in `work`, no
 * token, and no proxy of the machine's between the CLI and 127.0.0.1.
 */
export function standInEnv(hub: HubStandIn, work: string): NodeJS.ProcessEnv {
  return { ...process.env, ...NO_PROXY_ENV, HF_ENDPOINT: hub.endpoint, HF_HOME: join(work, 'hf-home'), HF_TOKEN: '' };
}

/** A local folder's files as a stand-in repository's, under `prefix/` (the release folder in the repository). */
export async function folderFiles(dir: string, prefix: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of await readdir(dir)) files.set(`${prefix}/${name}`, await readFile(join(dir, name)));
  return files;
}
