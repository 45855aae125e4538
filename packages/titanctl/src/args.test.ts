import { describe, expect, it } from 'vitest';
import { date, duration, flag, instant, int, parseFlags, pixel, required, shape, switchFlag, text, UsageError } from './args.js';

describe('value parsers', () => {
  it('reads int32s and rejects anything else', () => {
    expect(int.parse('-7')).toBe(-7);
    expect(() => int.parse('1.5')).toThrow(/expected an integer/);
    expect(() => int.parse('2147483648')).toThrow(/expected an integer/);
  });

  it('reads calendar dates as 00:00 UTC and rejects impossible ones', () => {
    expect(date.parse('1990-05-17')).toEqual(new Date('1990-05-17T00:00:00Z'));
    expect(() => date.parse('1990-02-30')).toThrow(/YYYY-MM-DD/);
    expect(() => date.parse('17.05.1990')).toThrow(/YYYY-MM-DD/);
  });

  it('reads durations in s, m, h and d', () => {
    expect(duration.parse('24h')).toEqual({ seconds: 86_400, nanos: 0 });
    expect(duration.parse('30m')).toEqual({ seconds: 1800, nanos: 0 });
    expect(duration.parse('3600s')).toEqual({ seconds: 3600, nanos: 0 });
    expect(duration.parse('90')).toEqual({ seconds: 90, nanos: 0 });
    expect(() => duration.parse('1w')).toThrow(/duration/);
  });

  it('reads instants as ISO times or spans before now', () => {
    const at = instant(() => Date.parse('2024-05-01T12:00:00Z'));
    expect(at.parse('2h')).toEqual(new Date('2024-05-01T10:00:00Z'));
    expect(at.parse('2024-04-01T08:00:00Z')).toEqual(new Date('2024-04-01T08:00:00Z'));
    expect(() => at.parse('yesterday')).toThrow(/ISO/);
  });

  it('reads pixels with an optional deviation and shapes with a named type', () => {
    expect(pixel.parse('8,8,FFFFFF')).toEqual({ x: 8, y: 8, rgbHex: 'FFFFFF', deviation: 0 });
    expect(pixel.parse('1, 2, 00ff00, 4')).toEqual({ x: 1, y: 2, rgbHex: '00ff00', deviation: 4 });
    expect(() => pixel.parse('1,2')).toThrow(/x,y,RRGGBB/);
    expect(shape.parse('triangle,1,2,3,4,5,ABCDEF')).toEqual({ type: 3, x: 1, y: 2, width: 3, height: 4, size: 5, rgbHex: 'ABCDEF' });
    expect(() => shape.parse('hexagon,1,2,3,4,5,ABCDEF')).toThrow(/rectangle, circle, triangle, irregular/);
  });
});

describe('parseFlags', () => {
  const ID = required(flag('uuid', text, 'id'));
  const N = flag('n', int, 'a number');
  const TAG = flag('tag', text, 'tags', { repeat: true });
  const ALL = switchFlag('all', 'everything');

  it('reads flags, a positional, repeats and switches through their Flag', () => {
    const { values, options } = parseFlags(['abc', '--n', '3', '--tag', 'a', '--tag', 'b', '--all', '--table'], [ID, N, TAG, ALL], ID);
    expect(values.get(ID)).toBe('abc');
    expect(values.get(N)).toBe(3);
    expect(values.all(TAG)).toEqual(['a', 'b']);
    expect(values.get(ALL)).toBe(true);
    expect(options).toEqual({ server: undefined, token: undefined, tls: false, table: true, help: false });
    expect(parseFlags(['--tls'], []).options).toMatchObject({ tls: true });
    expect(parseFlags(['--ca-file', '/ca.pem'], []).options).toMatchObject({ tls: true, caFile: '/ca.pem' });
  });

  it.each([
    [['--uuid', 'a', '--nope', '1'], /^unknown flag --nope$/],
    [['--n', '1'], /--uuid is required/],
    [['--uuid', 'a', '--n', 'x'], /--n: expected an integer/],
    [['--uuid', 'a', '--n', '1', '--n', '2'], /--n given more than once/],
    [['a', '--uuid', 'b'], /either as an argument or as --uuid/],
    [['a', 'b'], /unexpected argument: a b/],
  ])('rejects %j with a one-line UsageError', (argv, message) => {
    expect(() => parseFlags(argv, [ID, N], ID)).toThrow(UsageError);
    expect(() => parseFlags(argv, [ID, N], ID)).toThrow(message);
  });

  it('lets --help through without required flags', () => {
    expect(parseFlags(['--help'], [ID]).options.help).toBe(true);
  });
});
