import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { batchesInFlightPerKey, maxBatchUnits } from '../src/work/batcher.js';

// The README's quickstart is the twin of examples/quickstart.ts, which the SDK suite runs against
// the real server: if one changes without the other, this fails. And the README must render: a
// code fence that does not close on a line of its own turns everything after it into code.

const root = new URL('../../../', import.meta.url);

interface FencedBlock {
  /** The info string after the opening fence (`ts`, `sh`). */
  info: string;
  /** The lines between the fences. */
  content: string;
  /** 1-based line numbers of the opening and closing fences. */
  openLine: number;
  closeLine: number;
}

/**
 * The fenced code blocks of a Markdown text, as CommonMark reads them: a fence is three or more
 * backticks or tildes, indented at most three spaces; a closing fence uses the same character, is at
 * least as long as the opening one and has nothing after it. Also returns what breaks rendering: a
 * fence left open at the end, and a fence marker stuck to the end of a line of text or code (the
 * `}```` that ends a block for the eye but not for a Markdown renderer).
 */
function fencedBlocks(markdown: string): { blocks: FencedBlock[]; problems: string[] } {
  const lines = markdown.split('\n');
  const blocks: FencedBlock[] = [];
  const problems: string[] = [];
  let open: { marker: string; info: string; line: number; content: string[] } | undefined;
  for (const [index, line] of lines.entries()) {
    const lineNumber = index + 1;
    const fence = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (open === undefined) {
      if (fence !== null) {
        const [, marker = '', info = ''] = fence;
        open = { marker, info: info.trim(), line: lineNumber, content: [] };
      } else if (/\S\s*(`{3,}|~{3,})\s*$/.test(line)) {
        problems.push(`line ${lineNumber}: a fence marker after text, outside a code block: ${line.trim()}`);
      }
      continue;
    }
    const [, marker = '', rest = ''] = fence ?? [];
    if (fence !== null && marker[0] === open.marker[0] && marker.length >= open.marker.length && rest.trim() === '') {
      blocks.push({ info: open.info, content: open.content.join('\n'), openLine: open.line, closeLine: lineNumber });
      open = undefined;
      continue;
    }
    if (line.trimEnd().endsWith(open.marker) && line.trim() !== open.marker) {
      problems.push(
        `line ${lineNumber}: ${open.marker} appended to a line of the block opened on line ${open.line}; put it on a line of its own`,
      );
    }
    open.content.push(line);
  }
  if (open !== undefined) {
    problems.push(`line ${open.line}: the ${open.marker}${open.info} block opened here never closes`);
  }
  return { blocks, problems };
}

function readme(): string {
  return readFileSync(new URL('README.md', root), 'utf8');
}

describe('README', () => {
  it('closes every code fence on a line of its own', () => {
    const { blocks, problems } = fencedBlocks(readme());
    expect(problems).toEqual([]);
    expect(blocks.length).toBeGreaterThan(0);
    const fenceLines = readme()
      .split('\n')
      .filter((line) => /^ {0,3}(`{3,}|~{3,})/.test(line));
    expect(fenceLines.length % 2, 'an odd number of fence lines').toBe(0);
    expect(fenceLines.length).toBe(blocks.length * 2);
  });

  it('finds the breaks it is meant to find', () => {
    const broken = ['text', '```ts', 'const a = 1;', '}```', '<!-- end -->', '## After'].join('\n');
    expect(fencedBlocks(broken).problems).toEqual([
      'line 4: ``` appended to a line of the block opened on line 2; put it on a line of its own',
      'line 2: the ```ts block opened here never closes',
    ]);
    expect(fencedBlocks('```sh\nnpm test\n```\nsee above```\n').problems).toEqual([
      'line 4: a fence marker after text, outside a code block: see above```',
    ]);
    expect(fencedBlocks('````md\n```ts\nx\n```\n````\n')).toEqual({
      blocks: [{ info: 'md', content: '```ts\nx\n```', openLine: 1, closeLine: 5 }],
      problems: [],
    });
  });

  it('shows the quickstart exactly as examples/quickstart.ts runs it, in one closed ts block', () => {
    const text = readme();
    const example = readFileSync(new URL('examples/quickstart.ts', root), 'utf8');
    const start = example.indexOf('export async function quickstart(');
    const end = example.indexOf('\n}\n', start) + 2;
    expect(start).toBeGreaterThan(-1);
    const markerStart = text.indexOf('<!-- quickstart:start -->');
    const markerEnd = text.indexOf('<!-- quickstart:end -->');
    expect(markerStart).toBeGreaterThan(-1);
    expect(markerEnd).toBeGreaterThan(markerStart);
    const lineOf = (offset: number) => text.slice(0, offset).split('\n').length;
    const between = fencedBlocks(text).blocks.filter(
      (block) => block.openLine > lineOf(markerStart) && block.closeLine < lineOf(markerEnd),
    );
    expect(between).toHaveLength(1);
    const [block] = between;
    expect(block?.info).toBe('ts');
    // The block ends with the function's closing brace, on its own line, then the fence.
    expect(block?.content.endsWith(example.slice(start, end))).toBe(true);
    expect(block?.content).toContain("import { Tranche } from '@tranche/sdk';");
  });

  it('opens with the install-and-start and test commands', () => {
    const [first] = fencedBlocks(readme()).blocks;
    expect(first?.info).toBe('sh');
    expect(first?.content).toContain('npm install && npm start');
    expect(first?.content).toContain('npm test');
    const scripts = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).scripts;
    expect(scripts.start).toMatch(/main\.ts serve/);
    expect(scripts.test).toMatch(/vitest run/);
  });

  it('states the batch limits the batcher uses', () => {
    const text = readme().replace(/\s+/g, ' ');
    expect(text).toContain(`up to ${maxBatchUnits} (\`maxBatchUnits\`)`);
    expect(text).toContain(`in flight at once: ${batchesInFlightPerKey} (\`batchesInFlightPerKey\`)`);
  });
});
