import { describe, expect, it } from 'vitest';
import { DataType } from './proto.js';
import { arrayToTensor, elementCount, tensorToArray } from './tensor.js';

describe('tensor', () => {
  it('should round-trip float32 and int64 data through raw_data exactly', () => {
    const f = new Float32Array([1.5, -2.25, 3e-8, 7]);
    expect(Array.from(tensorToArray(arrayToTensor('f', f, [2, 2])) as Float32Array)).toEqual(Array.from(f));
    const big = new BigInt64Array([9007199254740993n, -1n]);
    const t = arrayToTensor('i', big, [2]);
    expect(t.dataType).toBe(DataType.INT64);
    expect(Array.from(tensorToArray(t) as BigInt64Array)).toEqual([9007199254740993n, -1n]);
  });
  it('should count the elements of a scalar as one', () => {
    expect(elementCount([])).toBe(1);
  });
  it('should refuse data that does not fill the shape', () => {
    expect(() => arrayToTensor('x', new Float32Array(3), [2, 2])).toThrow(/do not fill the shape/);
  });
});
