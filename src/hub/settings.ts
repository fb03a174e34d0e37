/**
 * Where the Hub is and who the user is there, by huggingface_hub's conventions: HF_ENDPOINT (default
 * https://huggingface.co); the token from HF_TOKEN (older name HUGGING_FACE_HUB_TOKEN), else the file
 * $HF_HOME/token (HF_HOME default ~/.cache/huggingface); HF_HUB_OFFLINE=1 for no network; the cache
 * in HF_HUB_CACHE (default $HF_HOME/hub); proxies as curl and huggingface_hub find them (proxy.ts).
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { proxyFor, proxySettings, type Proxy, type ProxySettings } from './proxy.js';

export interface HubSettings {
  endpoint: string;
  token: string | undefined;
  offline: boolean;
  cacheDir: string;
  /** The proxy a connection to `target` goes through (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), or undefined. */
  proxyFor: (target: URL) => Proxy | undefined;
}

export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const home = env.HF_HOME || join(homedir(), '.cache', 'huggingface');
  let token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined;
  if (!token) {
    try {
      token = readFileSync(join(home, 'token'), 'utf8').trim() || undefined;
    } catch {
      token = undefined;
    }
  }
  const offline = ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
  const endpoint = (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  // Read on first use: a proxy variable nobody can parse must not stop a run that never goes online.
  let proxies: ProxySettings | undefined;
  return { endpoint, token, offline, cacheDir: env.HF_HUB_CACHE || join(home, 'hub'), proxyFor: (target) => proxyFor((proxies ??= proxySettings(env)), target) };
}
