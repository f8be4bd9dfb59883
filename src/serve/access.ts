import { createHash, timingSafeEqual } from 'node:crypto';
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
