import crypto from 'node:crypto';
import type { FastifyHelmetOptions } from '@fastify/helmet';

// Security headers on every response (@fastify/helmet; decision 0012). HTML
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

export const SECURITY_HEADERS: FastifyHelmetOptions = {
  global: true,
  // useDefaults false: helmet's defaults add upgrade-insecure-requests, which
  // would send every form of a plain-HTTP deployment (a private network, the
  // demo, tests) to an https:// that is not there.
  contentSecurityPolicy: { useDefaults: false, directives: DIRECTIVES },
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
  // For this host only: whether sibling domains are HTTPS-only is not Herald's to say.
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: false },
};

/**
 * Route options for a page that keeps one inline <style> element (the
 * invoice form): that exact stylesheet is allowed by its hash, nothing else.
 */
export function allowInlineStyle(css: string): { helmet: FastifyHelmetOptions } {
  const hash = crypto.createHash('sha256').update(css).digest('base64');
  const { global: _global, ...rest } = SECURITY_HEADERS;
  return {
    helmet: {
      ...rest,
      contentSecurityPolicy: { useDefaults: false, directives: { ...DIRECTIVES, 'style-src': ["'self'", `'sha256-${hash}'`] } },
    },
  };
}
