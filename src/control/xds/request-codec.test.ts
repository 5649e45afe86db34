import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeMessage, encodeMessage } from '../../api/envoy/wire.ts';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, ResourceNames } from './request-codec.ts';
import { SendBudget } from './send-budget.ts';
import { decodeDeltaRequest, DELTA_DISCOVERY_REQUEST, DISCOVERY_REQUEST } from './service.ts';
import { Subscriptions } from './subscriptions.ts';

const NAMES = Array.from({ length: 50 }, (_, i) => `outbound|80||svc-${i}.default.svc.cluster.local`);

function request(fields: object): Uint8Array {
  return encodeMessage(DISCOVERY_REQUEST, fields);
}

describe('DiscoveryRequest decoding', () => {
  it('reads the fields as the generic codec does, with the names kept encoded', () => {
    const fields = {
      version_info: 'v1',
      node: { id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', metadata: { NAME: 'a' } },
      resource_names: NAMES,
      type_url: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
      response_nonce: '7',
      error_detail: { code: 3, message: 'bad' },
    };
    const bytes = request(fields);
    const { json, names } = decodeDiscoveryRequest(bytes);
    const generic = decodeMessage(DISCOVERY_REQUEST, bytes, { unknownAny: 'keep' });
    const { resource_names: genericNames, ...rest } = generic;
    assert.deepEqual(json, rest);
    assert.deepEqual(names.list(), genericNames);
    assert.deepEqual(decodeDiscoveryRequest(request({ type_url: 't' })).names.list(), []);
  });

  it('steps over a name list it knows with one comparison, and only an exact one', () => {
    const first = decodeDiscoveryRequest(request({ resource_names: NAMES, type_url: 't' }));
    const known = Buffer.from(first.names.bytes);
    const ack = decodeDiscoveryRequest(
      request({ resource_names: NAMES, type_url: 't', response_nonce: '1' }),
      [known],
    );
    assert.equal(Buffer.compare(ack.names.bytes, known), 0);
    assert.equal(ack.json.response_nonce, '1');
    // One more name: the known list is a prefix, not the list.
    const longer = decodeDiscoveryRequest(request({ resource_names: [...NAMES, 'x'], type_url: 't' }), [
      known,
    ]);
    assert.deepEqual(longer.names.list(), [...NAMES, 'x']);
    const shorter = decodeDiscoveryRequest(request({ resource_names: NAMES.slice(1), type_url: 't' }), [
      known,
    ]);
    assert.deepEqual(shorter.names.list(), NAMES.slice(1));
  });

  it('gathers names that are not contiguous, and rejects malformed input', () => {
    const a = Buffer.from(request({ resource_names: ['a'] }));
    const b = Buffer.from(request({ type_url: 't', resource_names: ['b'] }));
    const { json, names } = decodeDiscoveryRequest(Buffer.concat([a, b]));
    assert.deepEqual(names.list(), ['a', 'b']);
    assert.equal(json.type_url, 't');
    assert.throws(() => decodeDiscoveryRequest(Uint8Array.from([0x0a, 0xff, 0xff, 0x03])), /truncated/);
    assert.throws(() => decodeDiscoveryRequest(Uint8Array.from([0x20, 0x01])), /wire type 0/);
    assert.throws(() => decodeDiscoveryRequest(Uint8Array.from([0x00])), /field number 0/);
  });
});

describe('DeltaDiscoveryRequest decoding', () => {
  const fields = {
    node: { id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', metadata: { NAME: 'a' } },
    type_url: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
    resource_names_subscribe: ['*', ...NAMES],
    resource_names_unsubscribe: [NAMES[3], 'gone'],
    initial_resource_versions: { [NAMES[0]]: 'abc', [NAMES[1]]: '' },
    response_nonce: '7',
    error_detail: { code: 3, message: 'bad' },
  };

  it('reads the fields as the generic codec does, with the subscribed names kept encoded', () => {
    const bytes = encodeMessage(DELTA_DISCOVERY_REQUEST, fields);
    const { json, subscribe } = decodeDeltaDiscoveryRequest(bytes);
    const generic = decodeMessage(DELTA_DISCOVERY_REQUEST, bytes, { unknownAny: 'keep' });
    const { resource_names_subscribe: genericNames, ...rest } = generic;
    assert.deepEqual(json, rest);
    assert.deepEqual(subscribe.list(), genericNames);
    const ack = decodeDeltaDiscoveryRequest(
      encodeMessage(DELTA_DISCOVERY_REQUEST, { type_url: 't', response_nonce: '1' }),
    );
    assert.deepEqual(ack.json, { type_url: 't', response_nonce: '1' });
    assert.equal(ack.subscribe.empty, true);
  });

  it('gives equal subscribe lists from different proxies one shared subscription', () => {
    const subs = new Subscriptions();
    const a = decodeDeltaDiscoveryRequest(encodeMessage(DELTA_DISCOVERY_REQUEST, fields));
    const b = decodeDeltaDiscoveryRequest(
      encodeMessage(DELTA_DISCOVERY_REQUEST, { ...fields, node: { id: 'other' }, response_nonce: '' }),
    );
    const sa = subs.intern(a.subscribe);
    assert.equal(subs.intern(b.subscribe), sa);
    assert.equal(sa.star, true);
    assert.equal(sa.names.size, NAMES.length);
    assert.equal(subs.internSet(sa.names), subs.internSet(new Set(NAMES)));
  });

  it('reports malformed bytes as an error, not an exception', () => {
    const bytes = encodeMessage(DELTA_DISCOVERY_REQUEST, fields);
    const truncated = decodeDeltaRequest(bytes.subarray(0, bytes.length - 3));
    assert.match(
      truncated.error ?? '',
      /^malformed envoy\.service\.discovery\.v3\.DeltaDiscoveryRequest: truncated/,
    );
    const wrongType = decodeDeltaRequest(Uint8Array.of(0x18, 0x01)); // field 3 as a varint
    assert.match(wrongType.error ?? '', /field 3: wire type 0, expected length-delimited/);
  });
});

describe('Subscriptions', () => {
  it('gives equal name lists one shared subscription, without `*`', () => {
    const subs = new Subscriptions();
    const names = (list: string[]): ResourceNames =>
      new ResourceNames(decodeDiscoveryRequest(request({ resource_names: list })).names.bytes);
    const a = subs.intern(names(NAMES));
    const b = subs.intern(names([...NAMES]));
    assert.equal(a, b);
    assert.equal(a.names.size, NAMES.length);
    assert.notEqual(subs.intern(names(NAMES.slice(1))), a);
    const star = subs.intern(names(['*', 'x']));
    assert.ok(star.star);
    assert.deepEqual([...star.names], ['x']);
    assert.equal(subs.intern(new ResourceNames(new Uint8Array(0))).names.size, 0);
  });
});

describe('SendBudget', () => {
  it('lets waiters go in order once bytes are released, and releases by itself after holdMs', async () => {
    const budget = new SendBudget(100, 50);
    const order: number[] = [];
    const release = budget.take(100);
    assert.ok(budget.full);
    budget.wait(() => order.push(1));
    budget.wait(() => order.push(2));
    release();
    release(); // twice is once
    assert.deepEqual(order, [1, 2]);
    assert.equal(budget.inFlight, 0);
    budget.take(150);
    budget.wait(() => order.push(3));
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.deepEqual(order, [1, 2, 3]);
  });
});
