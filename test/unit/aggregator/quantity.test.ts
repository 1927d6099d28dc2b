import { describe, expect, it } from 'vitest';
import { formatQuantity, QuantityError } from '../../../aggregator/src/quantity.js';

describe('formatQuantity: canonical DecimalSI (docs/protocol.md#quantity)', () => {
  it.each([
    [0, '0'], [0.5, '500m'], [1.5, '1500m'], [1, '1'], [2, '2'], [10, '10'], [42, '42'], [100, '100'], [1000, '1k'],
    [1500, '1500'], [100000, '100k'], [123000, '123k'], [1234567, '1234567'], [1e6, '1M'], [1.5e6, '1500k'], [1e9, '1G'],
    [0.1, '100m'], [0.25, '250m'], [0.01, '10m'], [0.001, '1m'], [0.0005, '500u'], [0.0001, '100u'], [0.000000001, '1n'],
    [12.5, '12500m'], [3.14159, '3141590u'], [12345.678, '12345678m'], [-0.5, '-500m'], [-1.5, '-1500m'], [-2000, '-2k'],
    [-0.0005, '-500u'], [9.2e15, '9200T'],
  ])('%d -> %s', (v, want) => expect(formatQuantity(v)).toBe(want));
});

// Each expectation below equals Go's resource.ParseQuantity(String(v)) re-serialised as DecimalSI (apimachinery v0.37.2).
describe('formatQuantity: precision and limits', () => {
  it.each([
    [1e-10, '1n'], // rounded up, away from zero
    [1.5e-9, '2n'],
    [-1e-12, '-1n'],
    [5e-7, '500n'],
    [1e-7, '100n'],
    [1e-9, '1n'],
    [5e-324, '1n'],
    [-5e-324, '-1n'],
    [-0, '0'],
    [0.1 + 0.2, '300000001n'], // 0.30000000000000004 rounds up at the 9th decimal
    [1e15, '1P'],
    [-9.2e15, '-9200T'],
    [1e12 + 0.001, '1000000000000001m'],
    [1.7e-8, '17n'],
    [2.5e-8, '25n'],
    [1.234e-5, '12340n'],
  ])('%d -> %s', (v, want) => expect(formatQuantity(v)).toBe(want));

  it('uses exact decimal arithmetic, not float multiplication', () => {
    expect(formatQuantity(1.005)).toBe('1005m');
    expect(formatQuantity(123456789.123456789)).toBe('123456789123456790n'); // String() gives 123456789.12345679
  });

  it('accepts the largest value the HPA can hold and refuses beyond it', () => {
    expect(formatQuantity(9223372036854774)).toBe('9223372036854774'); // largest double <= 9223372036854775.807
    expect(formatQuantity(-9223372036854774)).toBe('-9223372036854774');
    expect(() => formatQuantity(-9223372036854776)).toThrow(QuantityError);
    expect(() => formatQuantity(9223372036854776)).toThrow(QuantityError); // the next double up
    expect(() => formatQuantity(9.3e15)).toThrow(QuantityError);
    expect(() => formatQuantity(1e21)).toThrow('|1e+21| is beyond what the HPA can hold (at most 9223372036854775.807)');
    expect(() => formatQuantity(-1e18)).toThrow(QuantityError);
  });

  it.each([NaN, Infinity, -Infinity])('refuses %d', (v) => {
    expect(() => formatQuantity(v)).toThrow(`${v} is not a finite number`);
  });
});
