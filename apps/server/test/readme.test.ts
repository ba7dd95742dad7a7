import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The README's quickstart is the twin of examples/quickstart.ts, which the SDK suite runs against
// the real server: if one changes without the other, this fails.

const root = new URL('../../../', import.meta.url);

describe('README', () => {
  it('shows the quickstart exactly as examples/quickstart.ts runs it', () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    const example = readFileSync(new URL('examples/quickstart.ts', root), 'utf8');
    const start = example.indexOf('export async function quickstart(');
    const end = example.indexOf('\n}\n', start) + 2;
    expect(start).toBeGreaterThan(-1);
    const block = readme.slice(readme.indexOf('<!-- quickstart:start -->'), readme.indexOf('<!-- quickstart:end -->'));
    expect(block).toContain(example.slice(start, end));
  });

  it('opens with the install-and-start and test commands', () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    const firstBlock = readme.slice(readme.indexOf('```sh'), readme.indexOf('```', readme.indexOf('```sh') + 5));
    expect(firstBlock).toContain('npm install && npm start');
    expect(firstBlock).toContain('npm test');
    const scripts = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).scripts;
    expect(scripts.start).toMatch(/main\.ts serve/);
    expect(scripts.test).toMatch(/vitest run/);
  });
});
