import { describe, expect, it } from 'vitest';
import { pgArray } from './sql.js';

describe('pgArray', () => {
  it('quotes and escapes every element so commas, quotes and backslashes survive', () => {
    expect(pgArray(['a,b', 'say "hi"', 'back\\slash', null, 3])).toBe('{"a,b","say \\"hi\\"","back\\\\slash",NULL,"3"}');
  });

  it('renders an empty list as {}', () => {
    expect(pgArray([])).toBe('{}');
  });
});
