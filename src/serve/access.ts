import { createHash, timingSafeEqual } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { isAbsolute, sep } from 'node:path';
import { expandInputs, hostAllowed } from '../ingest/index.ts';
import type { RequestHandler } from 'express';
import { HttpProblem } from './problem.ts';

/**
 * CORS for the configured origins ('*' for any). Browsers only; the service never trusts Origin for access, since
 * write and admin routes need the bearer token anyway.
 */
export function cors(origins: string[]): RequestHandler {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.get('origin');
    res.vary('Origin');
    if (origin && (any || allowed.has(origin))) {
      res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin);
      if (req.method === 'OPTIONS' && req.get('access-control-request-method')) {
        res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST');
        res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization');
        res.setHeader('Access-Control-Max-Age', '600');
        res.status(204).end();
        return;
      }
    }
    next();
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Guards write and admin routes: `Authorization: Bearer <token>`; without a configured token they are off. */
export function requireToken(token: string | undefined): RequestHandler {
  const expected = token === undefined ? undefined : digest(token);
  return (req, _res, next) => {
    if (!expected) throw new HttpProblem(403, 'admin and write routes are disabled: set serve.token (TILEVEC_TOKEN) to enable them');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    // Comparing digests keeps the comparison constant-time whatever the presented length.
    if (!m || !timingSafeEqual(digest(m[1]), expected)) {
      throw new HttpProblem(401, 'this route needs Authorization: Bearer <token>', {}, { 'WWW-Authenticate': 'Bearer realm="tilevec"' });
    }
    next();
  };
}

/** Headers that cost nothing and close common holes: no sniffing, no framing, a strict content policy. */
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Content-Security-Policy', "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
  next();
};

const URL_LIKE = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

/**
 * Vets the inputs of an HTTP-requested ingest. Local paths must be absolute and, after resolving symlinks, lie
 * under one of `roots` (a directory is expanded and every file in it checked again); URLs must be http(s) to a host
 * in `allowHosts`, without credentials. With no roots or hosts configured, that kind of input is refused.
 * Returns the inputs to ingest: real file paths and URLs.
 */
export async function confineIngestInputs(inputs: string[], limits: { roots: string[]; allowHosts: string[] }): Promise<string[]> {
  const roots = (await Promise.all(limits.roots.map((r) => realpath(r).catch(() => null)))).filter((r): r is string => r !== null);
  const underRoot = (p: string) => roots.some((r) => p === r || p.startsWith(r.endsWith(sep) ? r : r + sep));
  const vetted: string[] = [];
  for (const input of inputs) {
    if (URL_LIKE.test(input)) {
      let url: URL;
      try { url = new URL(input); } catch { throw new HttpProblem(400, `not a valid URL: ${input.slice(0, 200)}`); }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpProblem(400, `only http(s) URLs can be ingested over HTTP, got ${url.protocol}`);
      if (url.username || url.password) throw new HttpProblem(400, 'URLs with credentials are not accepted');
      if (limits.allowHosts.length === 0) throw new HttpProblem(403, 'URL ingest over HTTP is disabled: configure ingest.allowHosts (TILEVEC_ALLOW_HOSTS)');
      if (!hostAllowed(url, limits.allowHosts)) throw new HttpProblem(403, `host ${url.host} is not in ingest.allowHosts`);
      vetted.push(url.href);
      continue;
    }
    if (roots.length === 0) throw new HttpProblem(403, 'path ingest over HTTP is disabled: configure ingest.roots (TILEVEC_DATA_ROOTS)');
    if (!isAbsolute(input)) throw new HttpProblem(400, `paths must be absolute, got ${input.slice(0, 200)}`);
    if (/[*?[]/.test(input)) throw new HttpProblem(400, 'glob patterns are not accepted over HTTP; name files or directories');
    const real = await realpath(input).catch(() => null);
    // The same answer for a missing path and one outside the roots, so the route cannot probe the file system.
    if (!real || !underRoot(real)) throw new HttpProblem(403, `${input.slice(0, 200)} is not a file or directory under ingest.roots`);
    for (const e of await expandInputs([real])) {
      if ('error' in e) throw new HttpProblem(400, `${e.uri}: ${e.error}`);
      const file = await realpath(e.uri).catch(() => null);
      if (!file || !underRoot(file)) throw new HttpProblem(403, `${e.uri} resolves outside ingest.roots`);
      vetted.push(file);
    }
  }
  return vetted;
}
