import { readFileSync } from 'node:fs';
import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from 'openapi-typescript';
import { expect, it } from 'vitest';
import { openApiDocument } from '../../../apps/server/scripts/openapi.js';

const generatedPath = new URL('../src/openapi.ts', import.meta.url);

it('packages/sdk/src/openapi.ts matches the server’s OpenAPI document (run `npm run sdk:generate` if not)', async () => {
  const document = await openApiDocument();
  // The same text the openapi-typescript CLI writes in `npm run sdk:generate`.
  const expected = `${COMMENT_HEADER}${astToString(await openapiTS(document as unknown as OpenAPI3))}`;
  const committed = readFileSync(generatedPath, 'utf8');
  const committedLines = committed.split('\n');
  const expectedLines = expected.split('\n');
  const firstDifference = committedLines.findIndex((line, index) => line !== expectedLines[index]);
  const where = firstDifference === -1 ? committedLines.length + 1 : firstDifference + 1;
  expect(
    committed === expected,
    `packages/sdk/src/openapi.ts is stale from line ${where}: run \`npm run sdk:generate\``,
  ).toBe(true);
});
