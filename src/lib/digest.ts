import crypto from 'node:crypto';

// Secrets Herald checks but does not keep (API keys, admin session tokens,
// webhook secrets, the metrics token) are stored or held as SHA-256 digests
// and compared in constant time: equal-length digests whatever was sent.

/** SHA-256 of a text, hex. */
export function sha256Hex(text: string): string {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Constant-time comparison of a presented secret with a stored hex digest (null: nothing matches). */
export function digestMatches(given: string, digest: string | null): boolean {
  if (!digest) return false;
  const a = crypto.createHash('sha256').update(given, 'utf8').digest();
  const b = Buffer.from(digest, 'hex');
  return b.length === a.length && crypto.timingSafeEqual(a, b);
}
