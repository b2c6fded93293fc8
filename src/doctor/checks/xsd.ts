import { HERALD_ENVELOPE_XSD } from '../../taric/envelope/xsd.js';
import { XMLLINT, XMLLINT_MISSING, XmllintStream, xmllintVersion } from '../../taric/envelope/xmllint.js';
import { fail, ok, skip, type Check } from '../check.js';

// Which validator the export will use (EXPORTER_XSD_VALIDATOR,
// docs/decisions/0019), and that xmllint, when it is the one, compiles
// Herald's envelope schema: an element that is not an envelope goes through
// the export's own XmllintStream, and "not valid" is the answer a working
// xmllint gives (a schema that does not compile rejects instead).

const INSTALL = 'apt-get install libxml2-utils (Debian/Ubuntu), or set EXPORTER_XSD_VALIDATOR=wasm';

export const xsdCheck: Check = {
  name: 'xsd-validator',
  async run({ config, signal }) {
    const choice = config.EXPORTER_XSD_VALIDATOR;
    if (choice === 'wasm') return ok('libxml2-wasm in a worker thread validates envelopes (EXPORTER_XSD_VALIDATOR=wasm)');
    const version = xmllintVersion();
    if (version === null) {
      if (choice === 'xmllint') return fail(XMLLINT_MISSING, INSTALL);
      return skip(`${XMLLINT} not found: exports fall back to libxml2-wasm (about twice the validation CPU, in the worker's memory)`, INSTALL);
    }
    let stream: XmllintStream | undefined;
    const stop = () => stream?.abort();
    signal.addEventListener('abort', stop, { once: true });
    try {
      stream = new XmllintStream(HERALD_ENVELOPE_XSD, 1);
      await stream.write(Buffer.from('<not-an-envelope/>\n'));
      const r = await stream.result();
      if (r.count === 0) return fail(`${XMLLINT} accepted a document that is not an envelope against ${HERALD_ENVELOPE_XSD}`, INSTALL);
      return ok(`${XMLLINT} (libxml ${version}) validates envelopes, streaming, in its own process`);
    } catch (err) {
      return fail(`${XMLLINT} could not use Herald's schema ${HERALD_ENVELOPE_XSD}: ${(err as Error).message}`, INSTALL);
    } finally {
      signal.removeEventListener('abort', stop);
    }
  },
};
