/**
 * The bench's CDN stand-in (scripts/bench-cdn.py) speaks the part of HTTP the Hub client checks:
 * whole answers, ranged 206 answers with a matching Content-Range, and 416 past the end. The bench's
 * case (f) depends on it; a wrong byte there would fail that case's verification, so this pins the
 * contract itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAS_PYTHON, ROOT, tempDir } from '../support/helpers.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function fetchRaw(port: number, range?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/payload', headers: range ? { Range: range } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe.skipIf(!HAS_PYTHON)('scripts/bench-cdn.py', () => {
  const data = randomBytes(3 << 20);
  let cdn: ChildProcess;
  let port = 0;

  beforeAll(async () => {
    const dir = await tempDir('mxor-cdn-');
    const file = join(dir, 'payload.bin');
    await writeFile(file, data);
    cdn = spawn('python3', [join(ROOT, 'scripts', 'bench-cdn.py'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
    port = await new Promise<number>((resolve, reject) => {
      cdn.on('exit', (code) => reject(new Error(`bench-cdn.py exited (${code})`)));
      cdn.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    });
  });
  afterAll(() => {
    cdn?.kill();
  });

  it('prints the port it listens on', () => {
    expect(port).toBeGreaterThan(0);
  });

  it('answers a GET without Range with 200 and the whole file', async () => {
    const a = await fetchRaw(port);
    expect(a.status).toBe(200);
    expect(a.headers['content-length']).toBe(String(data.length));
    expect(a.headers['content-range']).toBeUndefined();
    expect(a.body.equals(data)).toBe(true);
  });

  it('answers an open Range with 206, a matching Content-Range and the bytes from that offset', async () => {
    const a = await fetchRaw(port, 'bytes=1000001-');
    expect(a.status).toBe(206);
    expect(a.headers['content-range']).toBe(`bytes 1000001-${data.length - 1}/${data.length}`);
    expect(a.body.equals(data.subarray(1000001))).toBe(true);
  });

  it('answers a closed Range with exactly those bytes', async () => {
    const a = await fetchRaw(port, 'bytes=10-19');
    expect(a.status).toBe(206);
    expect(a.headers['content-range']).toBe(`bytes 10-19/${data.length}`);
    expect(a.body.equals(data.subarray(10, 20))).toBe(true);
  });

  it('answers a Range past the end with 416 and the size', async () => {
    const a = await fetchRaw(port, `bytes=${data.length + 5}-`);
    expect(a.status).toBe(416);
    expect(a.headers['content-range']).toBe(`bytes */${data.length}`);
    expect(a.body.length).toBe(0);
  });
});
