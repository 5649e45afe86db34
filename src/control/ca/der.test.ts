/**
 * The DER reader against well-formed, malformed and truncated input, and the encoder against known
 * encodings (X.690 examples and what openssl writes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DerError,
  TAG,
  bitStringBytes,
  childrenOf,
  contentOf,
  decodeOid,
  decodeSmallInteger,
  encodeBitString,
  encodeElement,
  encodeOid,
  encodeTime,
  encodeUnsignedInteger,
  readElement,
  readTopElement,
} from './der.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('DER reader', () => {
  it('reads short and long lengths and walks children', () => {
    const long = Buffer.alloc(200, 0x41);
    const der = encodeElement(TAG.SEQUENCE, encodeElement(TAG.OCTET_STRING, long), hex('0500'));
    assert.equal(der.subarray(0, 3).toString('hex'), '3081cd');
    const top = readTopElement(der, TAG.SEQUENCE, 'test');
    const [octets, nul] = childrenOf(der, top);
    assert.equal(octets.tag, TAG.OCTET_STRING);
    assert.deepEqual(Buffer.from(contentOf(der, octets)), long);
    assert.equal(nul.tag, TAG.NULL);
    assert.equal(nul.end, der.length);
  });

  it('refuses indefinite, non-minimal, oversized and multi-byte-tag encodings', () => {
    for (const bad of [
      '3080 0000',
      '3081 05 0000000000',
      '3082 0005 0000000000',
      '3085 0000000001 00',
      '1f01 00',
    ]) {
      assert.throws(() => readElement(hex(bad), 0), DerError, bad);
    }
  });

  it('refuses every truncation of a valid element, and trailing bytes', () => {
    const der = encodeElement(
      TAG.SEQUENCE,
      encodeOid('1.2.840.10045.4.3.2'),
      encodeElement(TAG.OCTET_STRING, Buffer.alloc(150)),
    );
    for (let n = 0; n < der.length; n++) {
      assert.throws(
        () => childrenOf(der.subarray(0, n), readTopElement(der.subarray(0, n), TAG.SEQUENCE, 't')),
        DerError,
        `${n} bytes`,
      );
    }
    assert.throws(() => readTopElement(Buffer.concat([der, hex('00')]), TAG.SEQUENCE, 't'), /after the end/);
  });

  it('refuses children that overrun their parent', () => {
    // SEQUENCE of 3 bytes holding an OCTET STRING that claims 5.
    const der = hex('3003 0405 0102 03 0405');
    assert.throws(() => childrenOf(der, readElement(der, 0)), DerError);
    assert.throws(() => childrenOf(hex('0400'), readElement(hex('0400'), 0)), /primitive/);
  });

  it('decodes object identifiers and refuses malformed ones', () => {
    assert.equal(decodeOid(hex('2a8648ce3d040302')), '1.2.840.10045.4.3.2');
    assert.equal(decodeOid(hex('551d11')), '2.5.29.17');
    assert.equal(decodeOid(hex('8837')), '2.999');
    assert.throws(() => decodeOid(hex('')), DerError);
    assert.throws(() => decodeOid(hex('2a86')), /truncated/);
    assert.throws(() => decodeOid(hex('2a8001')), /non-minimal/);
    assert.throws(() => decodeOid(hex('ffffffffffffffffff7f')), /too large/);
  });

  it('reads small integers and bit strings strictly', () => {
    assert.equal(decodeSmallInteger(hex('00')), 0);
    assert.equal(decodeSmallInteger(hex('0080')), 128);
    assert.throws(() => decodeSmallInteger(hex('0001')), /non-minimal/);
    assert.throws(() => decodeSmallInteger(hex('80')), /negative/);
    assert.throws(() => decodeSmallInteger(hex('')), DerError);
    const bits = hex('0303 00abcd');
    assert.equal(Buffer.from(bitStringBytes(bits, readElement(bits, 0))).toString('hex'), 'abcd');
    const unused = hex('0303 04abc0');
    assert.throws(() => bitStringBytes(unused, readElement(unused, 0)), /unused bits/);
  });
});

describe('DER encoder', () => {
  it('encodes object identifiers as X.690 does', () => {
    assert.equal(encodeOid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
    assert.equal(encodeOid('2.5.29.17').toString('hex'), '0603551d11');
    assert.equal(encodeOid('2.999').toString('hex'), '06028837');
    for (const oid of ['1.3.6.1.5.5.7.3.1', '1.2.840.113549.1.9.14', '2.16.840.1.101.3.4.2.1'])
      assert.equal(decodeOid(contentOf(encodeOid(oid), readElement(encodeOid(oid), 0))), oid);
    assert.throws(() => encodeOid('3.1'), RangeError);
  });

  it('encodes unsigned integers minimally, with a leading zero when the top bit is set', () => {
    assert.equal(encodeUnsignedInteger(hex('00007f')).toString('hex'), '02017f');
    assert.equal(encodeUnsignedInteger(hex('0080')).toString('hex'), '02020080');
    assert.equal(encodeUnsignedInteger(hex('ff01')).toString('hex'), '020300ff01');
    assert.equal(encodeUnsignedInteger(hex('0000')).toString('hex'), '020100');
  });

  it('encodes times as UTCTime through 2049 and GeneralizedTime from 2050, in whole seconds', () => {
    assert.equal(
      encodeTime(new Date('2026-03-04T05:06:07.890Z')).toString('latin1').slice(2),
      '260304050607Z',
    );
    assert.equal(encodeTime(new Date('2049-12-31T23:59:59Z'))[0], TAG.UTC_TIME);
    const late = encodeTime(new Date('2050-01-01T00:00:00Z'));
    assert.equal(late[0], TAG.GENERALIZED_TIME);
    assert.equal(late.toString('latin1').slice(2), '20500101000000Z');
    assert.throws(() => encodeTime(new Date('1949-12-31T00:00:00Z')), RangeError);
  });

  it('encodes lengths in the short and long forms', () => {
    assert.equal(encodeElement(TAG.OCTET_STRING, Buffer.alloc(127)).subarray(0, 2).toString('hex'), '047f');
    assert.equal(encodeElement(TAG.OCTET_STRING, Buffer.alloc(128)).subarray(0, 3).toString('hex'), '048180');
    assert.equal(
      encodeElement(TAG.OCTET_STRING, Buffer.alloc(256)).subarray(0, 4).toString('hex'),
      '04820100',
    );
    assert.equal(encodeBitString(hex('abcd')).toString('hex'), '030300abcd');
  });
});
