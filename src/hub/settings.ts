/**
 * Where the Hub is and who the user is there, by huggingface_hub's conventions: HF_ENDPOINT (default
 * https://huggingface.co); the token from HF_TOKEN (older name HUGGING_FACE_HUB_TOKEN), else the file
 * $HF_HOME/token (HF_HOME default ~/.cache/huggingface); HF_HUB_OFFLINE=1 for no network; the cache
 * in HF_HUB_CACHE (default $HF_HOME/hub).
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface HubSettings {
  endpoint: string;
  token: string | undefined;
  offline: boolean;
  cacheDir: string;
  /**
   * The proxy variable that names a proxy for the endpoint (HTTPS_PROXY or HTTP_PROXY, NO_PROXY
   * respected). Connections go direct regardless (as Node 20's fetch does); a failure says so.
   */
  ignoredProxy: string | undefined;
}

function proxyVariable(endpoint: string, env: NodeJS.ProcessEnv): string | undefined {
  const url = new URL(endpoint);
  const name = (url.protocol === 'https:' ? ['HTTPS_PROXY', 'https_proxy'] : ['HTTP_PROXY', 'http_proxy']).find((n) => env[n]);
  if (!name) return undefined;
  const host = url.hostname.toLowerCase();
  const excluded = (env.NO_PROXY || env.no_proxy || '')
    .split(',')
    .map((entry) => entry.trim().toLowerCase().replace(/:\d+$/, '').replace(/^\*?\./, ''))
    .some((entry) => entry === '*' || (entry !== '' && (host === entry || host.endsWith(`.${entry}`))));
  return excluded ? undefined : name;
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
  return { endpoint, token, offline, cacheDir: env.HF_HUB_CACHE || join(home, 'hub'), ignoredProxy: proxyVariable(endpoint, env) };
}
