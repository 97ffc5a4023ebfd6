// Validates docs/contract/asyncapi.yaml with the official AsyncAPI parser,
// resolving the JSON Schemas it references. Exit status 1 on any error or warning.
//   node validate-asyncapi.mjs [path/to/asyncapi.yaml]
import { Parser, fromFile } from '@asyncapi/parser';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const doc = process.argv[2] ?? path.join(here, '../../contract/asyncapi.yaml');
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, doc).parse();

// Severity 0 is an error, 1 a warning; 2 (info) and 3 (hint) are advice.
const problems = diagnostics.filter((d) => d.severity <= 1);
for (const d of diagnostics) {
  const where = d.path?.join('.') ?? '';
  console.log(`${['error', 'warning', 'info', 'hint'][d.severity]} ${d.code}: ${d.message} (${where})`);
}
if (!document || problems.length > 0) {
  console.error(`asyncapi: ${doc} is not valid (${problems.length} errors or warnings)`);
  process.exit(1);
}
const channels = document.channels().all().map((c) => c.address());
console.log(`asyncapi: ${doc} is valid AsyncAPI ${document.version()}: ${channels.length} channels: ${channels.join(', ')}`);
