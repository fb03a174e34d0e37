/**
 * The Hugging Face Hub's HTTP contract. Resolving a revision to its commit and listing a folder at
 * that commit (each file's size and, for LFS files, its SHA-256) go through @huggingface/hub, the
 * ecosystem's client, given a fetch built on our own HTTP/1.1 GET (token scope, error answers,
 * retries, the same proxy and certificates as the files). The files are read with that GET directly
 * (http-get.ts: fetch cost the decoder half its CPU), strict where huggingface.js is lenient: a Range
 * request must be answered 206 with a matching Content-Range (a 200 means the Range was ignored and
 * is reported as such, never spliced), sizes are checked against the listing, an expired CDN URL
 * (403) is resolved again, and dropped connections, 5xx and 429 (Retry-After) are retried with
 * backoff. Facts: shared/reference/hub-http.md.
 */
import { InputError, interruptedBy } from '../errors.js';
import type { HfSource } from './hf-url.js';
import { checkListing, type HubFile, type ListedEntry } from './listing.js';

export type { HubFile } from './listing.js';
import { ConnectionError, HttpGet } from './http-get.js';
import { retryAfterMs } from './http-message.js';
import { pause } from './pause.js';
import type { HubSettings } from './settings.js';


export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A body that sends nothing for this long is a dropped connection (a stalled one would wait forever). */
  idleMs: number;
}

/** More than any listing page or model info the Hub sends. */
const API_BODY_LIMIT = 64 << 20;

const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 500, maxDelayMs: 30_000, idleMs: 60_000 };

/** A failure worth trying again: a dropped connection, a 5xx, a 429. */
export class RetryableError extends Error {
  constructor(
    message: string,
    /** From Retry-After, when the server said. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** An HTTP answer as `judge` needs it, whichever client got it. */
interface Answer {
  status: number;
  headers: Headers;
  /** Drops the body (and its connection). */
  discard(): Promise<unknown> | void;
}

export interface RangeResponse {
  body: HttpGet;
  /** The file offset the body starts at: the requested one, or 0 when the server ignored the Range. */
  bodyStart: number;
}

/** The TLS error code of a certificate that was refused, if that is what failed. */
function refusedCertificate(err: unknown): string | undefined {
  const code = err instanceof ConnectionError ? err.code : undefined;
  return code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_(GET_ISSUER|VERIFY)/.test(code) ? code : undefined;
}

/** An API answer's whole body (the listing's pages, the revision): small, but bounded all the same. */
async function readWhole(get: HttpGet, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for (;;) {
    const piece = Buffer.allocUnsafe(64 << 10);
    const n = await get.read(piece);
    parts.push(piece.subarray(0, n));
    total += n;
    if (total > API_BODY_LIMIT) {
      get.cancel();
      throw new InputError(`the Hub's answer for ${what} is larger than ${API_BODY_LIMIT >> 20} MiB`, { hint: 'check HF_ENDPOINT' });
    }
    if (n < piece.length) break;
  }
  // A body cut short is a dropped connection: worth another try.
  if (!get.complete) throw new RetryableError(`the answer for ${what} was cut short (${get.failure ?? 'connection closed'})`);
  return Buffer.concat(parts);
}

export class HubClient {
  readonly retry: RetryPolicy;
  /** Signed CDN URLs by file, reused for every range of it until they expire. */
  private readonly cdn = new Map<string, string>();

  constructor(
    readonly settings: HubSettings,
    options: { retry?: Partial<RetryPolicy> } = {},
  ) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  private headers(url: string, extra: Record<string, string> = {}): Record<string, string> {
    // The token goes to the Hub only, never to a CDN on another origin.
    const sameOrigin = new URL(url).origin === new URL(this.settings.endpoint).origin;
    return { ...extra, ...(this.settings.token && sameOrigin ? { Authorization: `Bearer ${this.settings.token}` } : {}) };
  }

  /** Turns the Hub's error answers into what the user must fix (exit 2), and flags what may be retried. */
  private async judge(response: Answer, what: string): Promise<void> {
    if (response.status >= 200 && response.status < 400) return;
    const code = response.headers.get('x-error-code') ?? '';
    await response.discard();
    if (response.status === 401 || (response.status === 403 && code !== '')) {
      throw new InputError(`the Hub refused access to ${what} (HTTP ${response.status}${code ? `, ${code}` : ''})`, {
        hint: this.settings.token
          ? 'the token in HF_TOKEN (or $HF_HOME/token) has no access: accept the repository\'s terms on the Hub, or use a token that has access'
          : 'the repository is gated or private: set HF_TOKEN to a Hugging Face token with access',
      });
    }
    if (response.status === 407) {
      throw new InputError(`a proxy asked for credentials for ${what} (HTTP 407)`, { hint: "give them in the proxy's address: HTTP_PROXY=http://user:password@host:port" });
    }
    if (response.status === 404) {
      const which = code === 'RevisionNotFound' ? 'the revision' : code === 'EntryNotFound' ? 'the path' : 'the repository';
      throw new InputError(`${which} does not exist on the Hub: ${what} (HTTP 404${code ? `, ${code}` : ''})`, { hint: 'check the hf:// source (owner/name, @revision, folder)' });
    }
    if (response.status === 429 || response.status >= 500) {
      throw new RetryableError(`HTTP ${response.status} for ${what}`, retryAfterMs(response.headers.get('retry-after')));
    }
    throw new InputError(`the Hub answered HTTP ${response.status} for ${what}`, { hint: 'check the hf:// source and HF_ENDPOINT' });
  }

  /** Runs `attempt` until it succeeds, retrying RetryableErrors and dropped connections with backoff. */
  async withRetries<T>(what: string, attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (signal?.aborted) throw interruptedBy(signal);
        const certificate = refusedCertificate(err);
        if (certificate) {
          // Trying again cannot make a certificate trusted.
          throw new InputError(`the certificate of ${new URL(this.settings.endpoint).host} (or of its CDN) was refused for ${what}: ${certificate}`, {
            hint: 'for a proxy or private endpoint with its own certificate authority, point NODE_EXTRA_CA_CERTS at that authority\'s certificate; check the system clock',
          });
        }
        const retryable = err instanceof RetryableError || err instanceof ConnectionError;
        if (!retryable || n >= this.retry.attempts || signal?.aborted) {
          if (retryable) {
            const proxy = this.settings.proxyFor(new URL(this.settings.endpoint));
            throw new InputError(`the Hub could not be read: ${(err as Error).message} (${n} attempts)`, {
              hint: `check the network${proxy ? ` and the proxy in ${proxy.variable} (${proxy.url.host})` : ''} and HF_ENDPOINT, then run again`,
            });
          }
          throw err;
        }
        const backoff = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (n - 1));
        const wait = err instanceof RetryableError && err.retryAfterMs !== undefined ? Math.min(err.retryAfterMs, this.retry.maxDelayMs) : backoff;
        await pause(wait, signal);
        if (signal?.aborted) throw interruptedBy(signal);
      }
    }
  }

  /**
   * The fetch @huggingface/hub calls for the listing and the revision, on our own GET (so through the
   * same proxy and certificate handling as the files): redirects followed, the token sent only to the
   * Hub's own origin, and the Hub's error answers turned into our errors (exit 2 with the fix, or a
   * retry) before the library sees them. GET only: the library asks nothing else here.
   */
  private hubFetch(what: string): typeof fetch {
    return async (input, init) => {
      let url = input instanceof Request ? input.url : String(input);
      const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
      if (method !== 'GET') throw new Error(`the Hub client asked for ${method} ${url}; only GET is sent`);
      const asked = Object.fromEntries(new Headers(init?.headers).entries());
      for (let hop = 0; hop < 5; hop++) {
        const get = await HttpGet.open(url, { headers: { ...asked, ...this.headers(url) }, signal: init?.signal ?? undefined, idleMs: this.retry.idleMs, proxy: this.settings.proxyFor(new URL(url)) });
        const location = get.headers.get('location');
        if (get.status >= 300 && get.status < 400 && location) {
          get.cancel();
          url = new URL(location, url).toString();
          continue;
        }
        await this.judge({ status: get.status, headers: get.headers, discard: () => get.cancel() }, what);
        const body = await readWhole(get, what);
        return new Response(get.status === 204 || get.status === 304 ? null : body, { status: get.status, headers: get.headers });
      }
      throw new InputError(`too many redirects for ${what}`, { hint: 'check HF_ENDPOINT' });
    };
  }

  /** The commit a revision (branch, tag or commit) names now: every request of a run uses it. */
  async resolveCommit(repo: string, revision: string): Promise<string> {
    const what = `${repo}@${revision}`;
    // Loaded on first use: runs on local folders never pay for it.
    const { modelInfo } = await import('@huggingface/hub');
    const info = await this.withRetries(what, () =>
      modelInfo({ name: repo, revision, hubUrl: this.settings.endpoint, additionalFields: ['sha'], fetch: this.hubFetch(what) }),
    );
    const sha: unknown = info.sha;
    if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) throw new InputError(`the Hub gave no commit for ${what}`, { hint: 'check HF_ENDPOINT' });
    return sha;
  }

  /** The files directly in a folder at a commit (subfolders are not descended into), all pages of the listing. */
  async listFolder(source: HfSource, commit: string): Promise<HubFile[]> {
    const what = `${source.repo}@${commit}/${source.path}`;
    const { listFiles } = await import('@huggingface/hub');
    return this.withRetries(what, async () => {
      const listed: ListedEntry[] = [];
      const entries = listFiles({ repo: { type: 'model', name: source.repo }, revision: commit, path: source.path || undefined, hubUrl: this.settings.endpoint, fetch: this.hubFetch(what) });
      for await (const e of entries) listed.push(e);
      return checkListing(listed, source, what);
    });
  }

  /**
   * One ranged GET of `path` from byte `offset` up to `end` (exclusive; the file's end by default): through the resolve URL, whose redirect (LFS files)
   * is kept and reused, and resolved again when the CDN says it expired (403).
   */
  async openRange(repo: string, commit: string, path: string, offset: number, size: number, signal?: AbortSignal, end = size): Promise<RangeResponse> {
    const key = `${repo}@${commit}/${path}`;
    const resolveUrl = `${this.settings.endpoint}/${repo}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`;
    // Bounded where less than the rest is wanted: a CDN pushes all it is asked for before a hang-up.
    const range = { Range: `bytes=${offset}-${end < size ? end - 1 : ''}` };
    let url = this.cdn.get(key) ?? resolveUrl;
    for (let hop = 0; hop < 4; hop++) {
      const response = await HttpGet.open(url, { headers: this.headers(url, range), signal, idleMs: this.retry.idleMs, proxy: this.settings.proxyFor(new URL(url)) });
      if (response.status >= 300 && response.status < 400 && response.headers.get('location')) {
        response.cancel();
        url = new URL(response.headers.get('location')!, url).toString();
        this.cdn.set(key, url);
        continue;
      }
      if (response.status === 403 && url !== resolveUrl && !response.headers.get('x-error-code')) {
        // A signed CDN URL that expired: ask the Hub for a new one.
        response.cancel();
        this.cdn.delete(key);
        url = resolveUrl;
        continue;
      }
      await this.judge({ status: response.status, headers: response.headers, discard: () => response.cancel() }, key);
      const coding = response.headers.get('content-encoding');
      if (coding !== null && coding.toLowerCase() !== 'identity') {
        response.cancel();
        throw new InputError(`the Hub sent ${key} with content coding "${coding}" where the file's own bytes were asked for`, {
          hint: 'a proxy may be rewriting the answer; check HF_ENDPOINT',
        });
      }
      if (response.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
        // More than asked for, from the offset asked, is the same bytes: taken up to `end`, the rest left.
        if (!m || Number(m[1]) !== offset || Number(m[3]) !== size || Number(m[2]) < end - 1) {
          response.cancel();
          throw new InputError(`the Hub answered bytes ${response.headers.get('content-range')} where bytes ${offset}-${end - 1}/${size} were asked for`, {
            file: `hf://${key}`,
            hint: 'the file changed on the Hub or a proxy rewrote the answer; run again',
          });
        }
        return { body: response, bodyStart: offset };
      }
      // 200: the Range was ignored and the body starts at byte 0; the caller skips to its offset.
      return { body: response, bodyStart: 0 };
    }
    throw new InputError(`too many redirects for ${key}`, { hint: 'check HF_ENDPOINT' });
  }
}
