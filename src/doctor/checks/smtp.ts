import { createSmtpMailer } from '../../mail/mailer.js';
import { failed, ok, skip, type Check } from '../check.js';

// SMTP (SMTP_URL): connect, EHLO (and STARTTLS / login when the URL asks
// for them) through nodemailer's verify(); nothing is sent.

export const smtpCheck: Check = {
  name: 'smtp',
  async run({ config, timeoutMs }) {
    const url = config.SMTP_URL;
    if (!url) return skip('SMTP_URL unset: no mail when a job fails permanently', 'set SMTP_URL and MAIL_FAILURES_TO to be told');
    const mailer = createSmtpMailer(url, timeoutMs);
    try {
      await mailer.verify();
      const to = config.MAIL_FAILURES_TO ? `failure mails go to ${config.MAIL_FAILURES_TO}` : 'MAIL_FAILURES_TO unset: no one is mailed';
      return ok(`${new URL(url).host} answered EHLO; ${to}`);
    } catch (err) {
      return failed(err, { name: 'the SMTP server', url, setting: 'SMTP_URL' }, 'check SMTP_URL (host, port, user, password)');
    } finally {
      mailer.close();
    }
  },
};
