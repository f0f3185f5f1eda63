// Parse an AsyncAPI document with the official parser (@asyncapi/parser, as `asyncapi
// validate` does) and print one JSON line: its diagnostics, and when it parsed, its channels
// and operations. tests/deploy/test_asyncapi.py runs it (`make deploy-tools` installs the parser).
import { Parser, fromFile } from '@asyncapi/parser';

const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, process.argv[2]).parse();
const severities = ['error', 'warning', 'information', 'hint'];
const out = {
  diagnostics: diagnostics.map((d) => ({
    severity: severities[d.severity],
    code: d.code,
    message: d.message,
    path: d.path.join('.'),
  })),
};
if (document) {
  out.channels = document.channels().all().map((c) => ({
    id: c.id(),
    address: c.address(),
    messages: c.messages().all().map((m) => m.id()),
  }));
  out.operations = document.operations().all().map((o) => ({
    id: o.id(),
    action: o.action(),
    channels: o.channels().all().map((c) => c.address()),
    tags: o.tags().all().map((t) => t.name()),
  }));
}
console.log(JSON.stringify(out));
