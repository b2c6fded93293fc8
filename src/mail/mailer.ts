import nodemailer from 'nodemailer';
import type { Config } from '../config.js';

// The SMTP side of failure mails. Made on first use, so a worker without
// SMTP settings starts and only the mail job names the missing setting.

export interface MailSettings {
  enabled: boolean;
  smtpUrl: string | undefined;
  to: string[];
  from: string;
  /** Base URL of `herald serve`, for a link in the mail (optional). */
  adminUrl?: string | undefined;
  /** One SMTP conversation, connect to QUIT (default 30 s). */
  timeoutMs?: number;
}

export interface OutgoingMail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  messageId: string;
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<void>;
  /** Connects, greets (EHLO) and logs in if the URL has credentials, then quits (herald doctor). */
  verify(): Promise<void>;
  close(): void;
}

export function mailSettingsFromConfig(config: Config): MailSettings {
  return {
    enabled: config.MAIL_FAILURES_ENABLED,
    smtpUrl: config.SMTP_URL,
    to: (config.MAIL_FAILURES_TO ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    from: config.MAIL_FROM,
  };
}

/** Mails are on only when switched on and both where to send and whom to tell are known. */
export function mailsWanted(s: MailSettings): boolean {
  return s.enabled && Boolean(s.smtpUrl) && s.to.length > 0;
}

export function createSmtpMailer(smtpUrl: string, timeoutMs = 30_000): Mailer {
  const transport = nodemailer.createTransport({
    url: smtpUrl,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  return {
    async send(mail) {
      await transport.sendMail({ ...mail, to: mail.to.join(', ') });
    },
    async verify() {
      await transport.verify();
    },
    close: () => transport.close(),
  };
}
