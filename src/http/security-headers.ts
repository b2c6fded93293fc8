import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';

// Security headers on every response (helmet; decisions 0012 and 0017). HTML
// pages are server-rendered and load their script and stylesheet from this
// origin (src/admin/assets.ts), so the policy needs no inline code: an
// injected <script>, on* attribute or style would not run. Framing is
// refused (clickjacking of /admin buttons), MIME sniffing off, no Referer
// leaves the site (admin URLs carry filters and ids). JSON answers get the
// same headers; they cost nothing there.

const DIRECTIVES = {
  'default-src': ["'self'"],
  'base-uri': ["'none'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'"],
};

const OPTIONS: HelmetOptions = {
  // useDefaults false: helmet's defaults add upgrade-insecure-requests, which
  // would send every form of a plain-HTTP deployment (a private network, the
  // demo, tests) to an https:// that is not there.
  contentSecurityPolicy: { useDefaults: false, directives: DIRECTIVES },
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
  // For this host only: whether sibling domains are HTTPS-only is not Herald's to say.
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: false },
};

/** Header name -> value, as helmet would set them on a response. */
export type SecurityHeaders = Readonly<Record<string, string>>;

/**
 * The headers helmet sets for these options, computed once. The policy has
 * no per-request parts (no nonces), so every answer gets the same lines:
 * helmet decides them, and the hot path only copies them (@fastify/helmet
 * built a helmet middleware per request, 11% of the submit path's CPU).
 */
export function securityHeadersOf(options: HelmetOptions): SecurityHeaders {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: string | number | readonly string[]) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => void delete headers[name.toLowerCase()],
  };
  let failure: unknown;
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => (failure = err));
  if (failure) throw failure;
  return Object.freeze(headers);
}

export const SECURITY_HEADERS = securityHeadersOf(OPTIONS);

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's own security headers (allowInlineStyle) instead of SECURITY_HEADERS. */
    securityHeaders?: SecurityHeaders;
  }
}

/** Every answer (routes, 404s, framework errors) carries the route's headers or SECURITY_HEADERS. */
export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', (req, reply, done) => {
    reply.headers(req.routeOptions.config?.securityHeaders ?? SECURITY_HEADERS);
    done();
  });
}

/**
 * Route config for a page that keeps one inline <style> element (the
 * invoice form): that exact stylesheet is allowed by its hash, nothing else.
 */
export function allowInlineStyle(css: string): { securityHeaders: SecurityHeaders } {
  const hash = crypto.createHash('sha256').update(css).digest('base64');
  return {
    securityHeaders: securityHeadersOf({
      ...OPTIONS,
      contentSecurityPolicy: { useDefaults: false, directives: { ...DIRECTIVES, 'style-src': ["'self'", `'sha256-${hash}'`] } },
    }),
  };
}
