import { createHash } from 'node:crypto';

/** Lanes of the vector: LtHash16 with 1,024 lanes of 16 bits (2 KiB), as Lewi et al. evaluate it. */
export const LANES = 1024;

/**
 * A homomorphic multiset hash (LtHash; Lewi et al., "Securing Update Propagation with Homomorphic
 * Hashing", 2019): an element maps to a vector of LANES 16-bit lanes (SHAKE128 of its bytes); a
 * multiset is the lane-wise sum mod 2^16 of its elements. Adding or removing one element is one
 * vector addition, so a scope's digest follows its rows in O(changed rows) and is the same
 * whatever order the changes came in. The authors estimate over 200 bits of security against
 * finding two multisets with the same sum at this size (docs/decisions.md).
 */
export class LtHash {
  readonly lanes: Uint16Array;

  constructor(lanes?: Uint16Array) {
    this.lanes = lanes ?? new Uint16Array(LANES);
  }

  /** The element vector of `bytes`. */
  static element(bytes: string | Buffer): Uint16Array {
    const out = createHash('shake128', { outputLength: LANES * 2 }).update(bytes).digest();
    const lanes = new Uint16Array(LANES);
    for (let i = 0; i < LANES; i++) lanes[i] = out.readUInt16LE(i * 2);
    return lanes;
  }

  /** Adds (sign 1) or removes (sign -1) an element or a whole sum. */
  add(other: Uint16Array, sign: 1 | -1 = 1): this {
    const lanes = this.lanes;
    // Uint16Array stores modulo 2^16: the wrap-around is the group operation.
    if (sign === 1) for (let i = 0; i < LANES; i++) lanes[i] = lanes[i]! + other[i]!;
    else for (let i = 0; i < LANES; i++) lanes[i] = lanes[i]! - other[i]!;
    return this;
  }

  isZero(): boolean {
    return this.lanes.every((lane) => lane === 0);
  }

  clone(): LtHash {
    return new LtHash(this.lanes.slice());
  }

  /** The sum's bytes (little-endian lanes), for naming it. */
  bytes(): Buffer {
    const out = Buffer.allocUnsafe(LANES * 2);
    for (let i = 0; i < LANES; i++) out.writeUInt16LE(this.lanes[i]!, i * 2);
    return out;
  }
}
