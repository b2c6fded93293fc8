import { z } from 'zod';
import { faultActionSchema } from './faults.js';

// What the HMRC stand-in accepts, kept as strict as we know HMRC to be, so
// a request that the sandbox takes is one HMRC would take too. Unknown keys
// are rejected: a typo in a field name must not pass silently.

export const HMRC_MEDIA_TYPE = 'application/vnd.hmrc.1.0+json';
export const HMRC_SCOPES = ['write:transfer-ready', 'write:transfer-complete'] as const;

export const notificationSchema = z.strictObject({
  informationType: z.literal('EDM', { message: 'must be "EDM"' }),
  // Herald stores a UUID per upload before the call (tamato does the same),
  // so anything else is a bug upstream of the notification.
  correlationID: z.uuid({ message: 'must be a UUID' }),
  file: z.strictObject(
    {
      fileName: z
        .string({ message: 'must be a string' })
        .min(1, { message: 'must not be empty' })
        .max(255, { message: 'must be at most 255 characters' })
        .regex(/^[^/\\]+$/, { message: 'must be a bare file name (no / or \\)' }),
      fileSize: z.number({ message: 'must be a number' }).int({ message: 'must be a whole number' }).positive({ message: 'must be positive' }),
      checksum: z.string({ message: 'must be a string' }).regex(/^[0-9a-f]{32}$/i, { message: 'must be 32 hexadecimal characters (an MD5 digest)' }),
      checksumAlgorithm: z.literal('MD5', { message: 'must be "MD5"' }),
    },
    { message: 'must be an object' },
  ),
});

export type TransferReadyNotification = z.infer<typeof notificationSchema>;

export type HmrcRoute = 'token' | 'notify';
export type HmrcFaultMatch = HmrcRoute | 'any';

/** A fault for the HMRC stand-in: match 'notify' (default), 'token' or 'any'. */
export const hmrcFaultSchema = z.intersection(
  faultActionSchema,
  z.object({
    match: z.enum(['token', 'notify', 'any']).optional(),
    times: z.number().int().min(1).max(10_000).optional(),
  }),
);
export type HmrcFault = z.infer<typeof hmrcFaultSchema>;

export interface FieldProblem {
  field: string;
  message: string;
}

/** The first problem of a failed parse, as "field: message" (HMRC names one at a time). */
export function firstProblem(error: z.ZodError, fallbackField = 'body'): FieldProblem {
  const issue = error.issues[0];
  if (!issue) return { field: fallbackField, message: 'is invalid' };
  if (issue.code === 'unrecognized_keys') {
    const parent = issue.path.join('.');
    const key = issue.keys[0] ?? '';
    return { field: parent ? `${parent}.${key}` : key, message: 'is not a known field' };
  }
  const field = issue.path.length ? issue.path.join('.') : fallbackField;
  // A missing key reaches zod as undefined; say so instead of "must be a string".
  const missing = issue.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined;
  return { field, message: missing ? 'is required' : issue.message };
}
