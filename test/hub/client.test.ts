/**
 * The Hub client and byte source against a real HTTP server on 127.0.0.1 that speaks the Hub's
 * contract (test/hub/stand-in.ts), with faults injected: each read must end byte-exact, or with the
 * documented error.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InputError, InterruptedError } from '../../src/errors.js';
import { HubClient, type HubFile } from '../../src/hub/client.js';
import { formatHfUrl, parseHfUrl } from '../../src/hub/hf-url.js';
import { HubSource } from '../../src/hub/hub-source.js';
import { hubSettings } from '../../src/hub/settings.js';
import { removeDir, seededBytes, sha256, tempDir, TEST_TLS } from '../support/helpers.js';
import { ProxyStandIn } from './proxy-stand-in.js';
import { HubStandIn } from './stand-in.js';

const COMMIT = 'c'.repeat(40);
const BIG = seededBytes(3 * 1024 * 1024 + 17, 1);

let hub: HubStandIn;
beforeAll(async () => {
  hub = new HubStandIn();
  await hub.start();
});
afterAll(() => hub.stop());
beforeEach(() => {
  hub.reset();
  hub.repos.set('Org/tiny-xor', {
    commit: COMMIT,
    files: new Map([
      ['xor_encoded_files/pytorch_model-00001-of-00001.bin', BIG],
      ['xor_encoded_files/config.json', Buffer.from('{"a": 1}\n')],
      ['xor_encoded_files/tokenizer_config.json', Buffer.from('{"b": 2}\n')],
      ['xor_encoded_files/special_tokens_map.json', Buffer.from('{}\n')],
      ['xor_encoded_files/generation_config.json', Buffer.from('{"c": 3}\n')],
      ['README.md', Buffer.from('# card\n')],
    ]),
  });
});

function client(env: Record<string, string> = {}) {
  return new HubClient(hubSettings({ HF_ENDPOINT: hub.endpoint, HF_HOME: '/nonexistent', ...env }), { retry: { baseDelayMs: 5, maxDelayMs: 1500 } });
}

async function readAll(c: HubClient, file: HubFile): Promise<{ bytes: Buffer; source: HubSource }> {
  const source = new HubSource(c, 'Org/tiny-xor', COMMIT, file, `hf://Org/tiny-xor/${file.path}`);
  const out = Buffer.alloc(file.size + 10);
  let n = 0;
  for (;;) {
    const got = await source.read(out.subarray(n), 1 << 20);
    n += got;
    if (got < 1 << 20) break;
  }
  await source.close();
  return { bytes: out.subarray(0, n), source };
}

const BIG_FILE: HubFile = { path: 'xor_encoded_files/pytorch_model-00001-of-00001.bin', name: 'pytorch_model-00001-of-00001.bin', size: BIG.length, lfsSha256: sha256(BIG) };

describe('bounded reads (issue 22, item 3)', () => {
  it('asks bytes=N-M for a part of a file, and gets exactly that part', async () => {
    const c = client();
    const source = new HubSource(c, 'Org/tiny-xor', COMMIT, BIG_FILE, `hf://Org/tiny-xor/${BIG_FILE.path}`, undefined, 1000, 1000 + 65536);
    const out = Buffer.alloc(70000);
    const n = await source.read(out, out.length);
    await source.close();
    expect(n).toBe(65536);
    expect(out.subarray(0, n).equals(BIG.subarray(1000, 1000 + 65536))).toBe(true);
    expect(hub.requests.filter((r) => r.url.startsWith('/cdn/')).map((r) => r.range)).toEqual(['bytes=1000-66535']);
  });

  it('takes what it asked for from a server that sends more (a whole rest, or the whole file ignoring the Range)', async () => {
    for (const fault of ['ignore-range'] as const) {
      hub.fault(BIG_FILE.path, fault);
      const source = new HubSource(client(), 'Org/tiny-xor', COMMIT, BIG_FILE, `hf://Org/tiny-xor/${BIG_FILE.path}`, undefined, 500, 600);
      const out = Buffer.alloc(200);
      const n = await source.read(out, out.length);
      await source.close();
      expect(n).toBe(100);
      expect(out.subarray(0, n).equals(BIG.subarray(500, 600))).toBe(true);
    }
  });
});

describe('hf:// sources', () => {
  it.each([
    ['hf://PygmalionAI/metharme-13b/xor_encoded_files', { repo: 'PygmalionAI/metharme-13b', revision: 'main', path: 'xor_encoded_files' }],
    ['hf://OpenAssistant/oasst-sft-6-llama-30b-xor@v1/oasst-sft-6-llama-30b-xor/', { repo: 'OpenAssistant/oasst-sft-6-llama-30b-xor', revision: 'v1', path: 'oasst-sft-6-llama-30b-xor' }],
    ['hf://Org/name@' + COMMIT, { repo: 'Org/name', revision: COMMIT, path: '' }],
  ])('%s', (text, expected) => {
    expect(parseHfUrl(text)).toEqual(expected);
    expect(parseHfUrl(formatHfUrl(parseHfUrl(text)))).toEqual(expected);
  });

  it.each(['hf://onlyowner', 'hf://a/b@', 'hf://a/b/../c', 'hf://datasets/x/y'])('refuses %s with exit 2', (text) => {
    expect(() => parseHfUrl(text)).toThrow(InputError);
  });
});

describe('settings', () => {
  let home: string;
  beforeEach(async () => {
    home = await tempDir();
  });
  afterEach(() => removeDir(home));

  it('HF_TOKEN first, else $HF_HOME/token; HF_ENDPOINT without its trailing slash; HF_HUB_OFFLINE', async () => {
    await mkdir(home, { recursive: true });
    await writeFile(join(home, 'token'), 'hf_fromfile\n');
    expect(hubSettings({ HF_HOME: home }).token).toBe('hf_fromfile');
    expect(hubSettings({ HF_HOME: home, HF_TOKEN: 'hf_env' }).token).toBe('hf_env');
    expect(hubSettings({ HF_HOME: home, HF_ENDPOINT: 'http://h/' }).endpoint).toBe('http://h');
    expect(hubSettings({ HF_HOME: home }).endpoint).toBe('https://huggingface.co');
    expect(hubSettings({ HF_HOME: home, HF_HUB_OFFLINE: '1' }).offline).toBe(true);
    expect(hubSettings({ HF_HOME: home }).cacheDir).toBe(join(home, 'hub'));
  });

  it.each([
    [{ HTTPS_PROXY: 'http://proxy:3128' }, 'HTTPS_PROXY'],
    [{ https_proxy: 'proxy:3128' }, 'https_proxy'],
    [{ HTTP_PROXY: 'http://proxy:3128' }, undefined],
    [{ HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'localhost,.huggingface.co' }, undefined],
    [{ HTTPS_PROXY: 'http://proxy:3128', no_proxy: 'huggingface.co:443' }, undefined],
    [{ HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: '*' }, undefined],
    [{ HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'face.co,example.com' }, 'HTTPS_PROXY'],
    [{ HTTPS_PROXY: 'http://other:1', https_proxy: 'http://proxy:3128' }, 'https_proxy'],
    [{ ALL_PROXY: 'socks5://127.0.0.1:1080' }, undefined],
  ])('the proxy for https://huggingface.co with %o: %s', (env, expected) => {
    const proxy = hubSettings({ HF_HOME: home, ...env }).proxyFor(new URL('https://huggingface.co/api/models/x'));
    expect(proxy?.variable).toBe(expected);
    if (proxy) expect(proxy.url.href).toBe('http://proxy:3128/');
  });

  it('a proxy variable that is not an http:// proxy is exit 2 naming it, only once a connection needs it', () => {
    const settings = hubSettings({ HF_HOME: home, HTTPS_PROXY: 'socks5://127.0.0.1:1080' });
    expect(settings.endpoint).toBe('https://huggingface.co');
    expect(() => settings.proxyFor(new URL('https://huggingface.co/'))).toThrow(/HTTPS_PROXY names a socks5:\/\/ proxy; metharme-xor speaks to proxies in plain http/);
  });
});

describe('HubClient', () => {
  it('resolves a revision to its commit and lists a folder across pages, with sizes and LFS SHA-256', async () => {
    const c = client();
    expect(await c.resolveCommit('Org/tiny-xor', 'main')).toBe(COMMIT);
    const files = await c.listFolder(parseHfUrl('hf://Org/tiny-xor/xor_encoded_files'), COMMIT);
    expect(files.map((f) => f.name).sort()).toEqual(['config.json', 'generation_config.json', 'pytorch_model-00001-of-00001.bin', 'special_tokens_map.json', 'tokenizer_config.json']);
    expect(files.find((f) => f.name.endsWith('.bin'))).toEqual(BIG_FILE);
    expect(hub.requests.filter((r) => r.url.includes('/tree/')).length).toBe(2);
  });

  it.each([
    ['a repository that does not exist', 'hf://Org/nothing', /the repository does not exist on the Hub/],
    ['a revision that does not exist', 'hf://Org/tiny-xor@nope', /the revision does not exist on the Hub/],
  ])('%s: InputError (exit 2) naming what is missing', async (_what, text, message) => {
    const s = parseHfUrl(text);
    await expect(client().resolveCommit(s.repo, s.revision)).rejects.toThrow(message);
  });

  it('a folder that does not exist: exit 2 naming the path', async () => {
    await expect(client().listFolder(parseHfUrl('hf://Org/tiny-xor/nope'), COMMIT)).rejects.toThrow(/the path does not exist on the Hub/);
  });

  it('a gated repository without a token: exit 2 naming HF_TOKEN; with the token it answers', async () => {
    hub.repos.get('Org/tiny-xor')!.gated = true;
    hub.repos.get('Org/tiny-xor')!.token = 'hf_ok';
    const err = await client().resolveCommit('Org/tiny-xor', 'main').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).exitCode).toBe(2);
    expect((err as InputError).hint).toMatch(/set HF_TOKEN/);
    expect(await client({ HF_TOKEN: 'hf_ok' }).resolveCommit('Org/tiny-xor', 'main')).toBe(COMMIT);
  });
});

describe('HubSource: ranged reads, strict, with faults', () => {
  it('reads a file byte-exactly through the resolve redirect, and checks its SHA-256 on the way', async () => {
    const { bytes, source } = await readAll(client(), BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    expect(source.integrity()).toBe('intact');
    expect(hub.requests.some((r) => r.url.includes('/resolve/'))).toBe(true);
    expect(hub.requests.some((r) => r.url.startsWith('/cdn/'))).toBe(true);
  });

  it('the token goes to the Hub (listing, revision, resolve) and never to the CDN on another origin', async () => {
    hub.separateCdn = true;
    Object.assign(hub.repos.get('Org/tiny-xor')!, { gated: true, token: 'hf_secret' });
    const c = client({ HF_TOKEN: 'hf_secret' });
    expect(await c.resolveCommit('Org/tiny-xor', 'main')).toBe(COMMIT);
    await c.listFolder(parseHfUrl('hf://Org/tiny-xor/xor_encoded_files'), COMMIT);
    const { bytes } = await readAll(c, BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    const cdn = hub.requests.filter((r) => r.url.startsWith('/cdn/'));
    const hubOwn = hub.requests.filter((r) => !r.url.startsWith('/cdn/'));
    expect(cdn.length).toBeGreaterThan(0);
    expect(cdn.every((r) => r.authorization === undefined)).toBe(true);
    expect(hubOwn.length).toBeGreaterThanOrEqual(4);
    expect(hubOwn.every((r) => r.authorization === 'Bearer hf_secret')).toBe(true);
  });

  it('a connection cut mid-body is picked up with a Range from the offset reached', async () => {
    hub.fault(BIG_FILE.path, 'cut');
    const { bytes, source } = await readAll(client(), BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    expect(source.integrity()).toBe('intact');
    const ranges = hub.requests.filter((r) => r.url.startsWith('/cdn/')).map((r) => r.range);
    expect(ranges[0]).toBe('bytes=0-');
    expect(ranges[1]).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('a server that ignores the Range (200) has the prefix skipped, never spliced in', async () => {
    hub.fault(BIG_FILE.path, 'cut', 'ignore-range');
    const { bytes, source } = await readAll(client(), BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    expect(source.integrity()).toBe('intact');
  });

  it('an expired CDN URL (403) is resolved again', async () => {
    hub.fault(BIG_FILE.path, 'cut', 'cdn-403');
    const { bytes } = await readAll(client(), BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    expect(hub.requests.filter((r) => r.url.includes('/resolve/')).length).toBe(2);
  });

  it('429 with Retry-After is waited out, and a 500 retried', async () => {
    hub.fault(BIG_FILE.path, '429', '500');
    const t0 = Date.now();
    const { bytes } = await readAll(client(), BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });

  it('corrupted bytes are caught by the SHA-256 from the listing', async () => {
    hub.fault(BIG_FILE.path, 'corrupt');
    const { source } = await readAll(client(), BIG_FILE);
    expect(source.integrity()).toBe('differs');
  });

  it('never reads past the listed size: more bytes than listed is an error', async () => {
    hub.fault(BIG_FILE.path, 'extra-bytes');
    await expect(readAll(client(), BIG_FILE)).rejects.toThrow(/sent more than the \d+ bytes its listing gives/);
  });

  it('a body in a content coding (a proxy ignoring Accept-Encoding) is refused with exit 2, never taken as the file', async () => {
    hub.fault(BIG_FILE.path, 'content-coding');
    const err = await readAll(client(), BIG_FILE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).oneLine()).toMatch(/content coding "gzip" where the file's own bytes were asked for; a proxy may be rewriting the answer/);
  });

  it('a CDN whose certificate is not trusted: exit 2 at once naming NODE_EXTRA_CA_CERTS, not retried', async () => {
    const secure = new HubStandIn();
    await secure.start({ tls: { key: await readFile(join(TEST_TLS, 'key.pem')), cert: await readFile(join(TEST_TLS, 'cert.pem')) } });
    try {
      secure.repos.set('Org/tiny-xor', hub.repos.get('Org/tiny-xor')!);
      // Default retry delays: six attempts would take over 15 s.
      const c = new HubClient(hubSettings({ HF_ENDPOINT: secure.endpoint, HF_HOME: '/nonexistent' }));
      const t0 = Date.now();
      const err = await readAll(c, BIG_FILE).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).oneLine()).toMatch(/certificate of 127\.0\.0\.1:\d+ \(or of its CDN\) was refused for .*: DEPTH_ZERO_SELF_SIGNED_CERT; .*NODE_EXTRA_CA_CERTS/);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await secure.stop();
    }
  });

  it('gives up after its retries with exit 2, naming the Hub', async () => {
    hub.fault(BIG_FILE.path, '500', '500', '500', '500', '500', '500', '500');
    const c = new HubClient(hubSettings({ HF_ENDPOINT: hub.endpoint, HF_HOME: '/nonexistent' }), { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    const err = (await readAll(c, BIG_FILE).catch((e: unknown) => e)) as InputError;
    expect(err.oneLine()).toMatch(/the Hub could not be read: HTTP 500 .*\(3 attempts\); check the network and HF_ENDPOINT, then run again$/);
  });

  it('a stalled connection (open, silent) is cancelled after idleMs and picked up with a Range', async () => {
    hub.fault(BIG_FILE.path, 'stall');
    const c = new HubClient(hubSettings({ HF_ENDPOINT: hub.endpoint, HF_HOME: '/nonexistent' }), { retry: { baseDelayMs: 5, maxDelayMs: 50, idleMs: 300 } });
    const { bytes, source } = await readAll(c, BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    expect(source.integrity()).toBe('intact');
    expect(hub.requests.filter((r) => r.url.startsWith('/cdn/')).map((r) => r.range)[1]).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('Ctrl-C ends a read waiting on a stalled connection at once, as an interruption', async () => {
    hub.fault(BIG_FILE.path, 'stall');
    const abort = new AbortController();
    const source = new HubSource(client(), 'Org/tiny-xor', COMMIT, BIG_FILE, 'hf://x', abort.signal);
    const buf = Buffer.alloc(BIG.length);
    const reading = source.read(buf, buf.length);
    setTimeout(() => abort.abort('SIGINT'), 200);
    const t0 = Date.now();
    await expect(reading).rejects.toBeInstanceOf(InterruptedError);
    expect(Date.now() - t0).toBeLessThan(5000);
    await source.close();
  });

  it('resuming from an offset: fetches only the rest, and leaves the whole file\'s SHA-256 to the caller', async () => {
    const start = 1024 * 1024;
    const source = new HubSource(client(), 'Org/tiny-xor', COMMIT, BIG_FILE, 'hf://x', undefined, start);
    const buf = Buffer.alloc(BIG.length);
    expect(await source.read(buf, buf.length)).toBe(BIG.length - start);
    expect(buf.subarray(0, BIG.length - start).equals(BIG.subarray(start))).toBe(true);
    expect(hub.requests.filter((r) => r.url.startsWith('/cdn/')).map((r) => r.range)).toEqual([`bytes=${start}-`]);
    // Its own hash would have covered only the rest: nothing is judged until the caller says.
    expect(source.integrity()).toBe('unknown');
    source.hashed(sha256(BIG));
    expect(source.integrity()).toBe('intact');
    await source.close();
    const wrong = new HubSource(client(), 'Org/tiny-xor', COMMIT, BIG_FILE, 'hf://x', undefined, start);
    await wrong.read(buf, buf.length);
    wrong.hashed(sha256(Buffer.alloc(BIG.length)));
    expect(wrong.integrity()).toBe('differs');
    await wrong.close();
  });

  it('leaveHashing: a digest handed back before the whole file was read is ignored', async () => {
    const source = new HubSource(client(), 'Org/tiny-xor', COMMIT, BIG_FILE, 'hf://x').leaveHashing();
    const right = sha256(BIG);
    const buf = Buffer.alloc(BIG.length);
    expect(await source.read(buf, 4096)).toBe(4096);
    source.hashed(right);
    expect(source.integrity()).toBe('unknown');
    await source.read(buf.subarray(4096), BIG.length - 4096);
    source.hashed(right);
    expect(source.integrity()).toBe('intact');
    await source.close();
  });
});

describe('through a proxy', () => {
  let proxy: ProxyStandIn;
  beforeAll(async () => {
    proxy = new ProxyStandIn();
    await proxy.start();
  });
  afterAll(() => proxy.stop());
  beforeEach(() => proxy.reset());

  it('HTTP_PROXY: every request goes through it (absolute-form), the listing too, and the bytes are exact', async () => {
    const c = client({ HTTP_PROXY: proxy.url });
    const commit = await c.resolveCommit('Org/tiny-xor', 'main');
    expect(commit).toBe(COMMIT);
    expect((await c.listFolder(parseHfUrl('hf://Org/tiny-xor/xor_encoded_files'), COMMIT)).length).toBe(5);
    hub.fault(BIG_FILE.path, 'cut');
    const { bytes, source } = await readAll(c, BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    expect(source.integrity()).toBe('intact');
    // Everything the Hub saw came through the proxy, which saw whole URLs.
    expect(proxy.requests.length).toBe(hub.requests.length);
    expect(proxy.requests.every((r) => r.method === 'GET' && r.target.startsWith(hub.endpoint))).toBe(true);
  });

  it('NO_PROXY names the host: the proxy is not used', async () => {
    const { bytes } = await readAll(client({ HTTP_PROXY: proxy.url, NO_PROXY: 'example.com,127.0.0.1' }), BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    expect(proxy.requests).toEqual([]);
  });

  it('a proxy that wants credentials: exit 2 saying where they go; given in its address, it works', async () => {
    proxy.credentials = 'user:p@ss';
    const err = (await readAll(client({ HTTP_PROXY: proxy.url }), BIG_FILE).catch((e: unknown) => e)) as InputError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.oneLine()).toMatch(/a proxy asked for credentials .*\(HTTP 407\); give them in the proxy's address: HTTP_PROXY=http:\/\/user:password@host:port/);
    const withCredentials = proxy.url.replace('http://', 'http://user:p%40ss@');
    const { bytes } = await readAll(client({ HTTP_PROXY: withCredentials }), BIG_FILE);
    expect(bytes.equals(BIG)).toBe(true);
    expect(proxy.requests.at(-1)!.authorization).toBe(`Basic ${Buffer.from('user:p@ss').toString('base64')}`);
  });

  it('a proxy that cannot be reached: the give-up message names it', async () => {
    const dead = new ProxyStandIn();
    await dead.start();
    await dead.stop();
    const c = new HubClient(hubSettings({ HF_ENDPOINT: hub.endpoint, HF_HOME: '/nonexistent', HTTP_PROXY: dead.url }), { retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    const err = (await readAll(c, BIG_FILE).catch((e: unknown) => e)) as InputError;
    expect(err.oneLine()).toMatch(new RegExp(`ECONNREFUSED.*check the network and the proxy in HTTP_PROXY \\(${new URL(dead.url).host}\\) and HF_ENDPOINT`));
  });
});
