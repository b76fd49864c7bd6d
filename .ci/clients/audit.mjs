// The graphql-http server audit (GraphQL-over-HTTP specification) against a running server:
// every MUST has to pass; SHOULDs are printed. Usage: node audit.mjs http://127.0.0.1:PORT/graphql
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql url>');
  process.exit(2);
}
let failed = 0;
let warned = 0;
let passed = 0;
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  if (result.status === 'ok') {
    passed += 1;
  } else if (result.status === 'warn') {
    warned += 1;
    console.log(`SHOULD ${audit.name}: ${result.reason}`);
  } else if (audit.name.startsWith('MUST')) {
    failed += 1;
    console.log(`MUST FAILED ${audit.name}: ${result.reason}`);
  } else {
    // A MAY the server chose not to do (GET requests: POST only, security.md G13).
    warned += 1;
    console.log(`${audit.name}: not done (${result.reason})`);
  }
}
console.log(`graphql-http audit: ${passed} passed, ${warned} SHOULD warnings, ${failed} MUST failures`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
