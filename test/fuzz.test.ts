/**
 * Fuzz: every RPC of every service, read from the proto descriptors, called with seeded random and
 * hostile messages (strings with NUL and control bytes or of 1 MiB, int64 extremes, Timestamps
 * outside their range, unknown enum values, NaN) and with raw bytes that are no message at all.
 * Whatever a client sends, the answer is never INTERNAL or UNKNOWN and the services keep serving.
 *
 * FUZZ_SEED (default 1) and FUZZ_CALLS (messages per method, default 100) reproduce or widen a run.
 */
import { Client, credentials, status } from '@grpc/grpc-js';
import { healthStatus } from '@titanbot/write/test-support/health';
import { adminApi, provisionDevice } from '@titanbot/read/test-support/admin';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadProtoServices, rawCall } from './support/raw-grpc.js';
import { prng } from '@titanbot/write/test-support/prng';

const SEED = Number(process.env.FUZZ_SEED ?? 1);
const CALLS = Number(process.env.FUZZ_CALLS ?? 100);
const RAW_CALLS = 8;

/** A random value for a field, hostile often. */
class Generator {
  constructor(
    private readonly random: () => number,
    /** Real identifiers (a device uuid, a logical id), so some calls get past NOT_FOUND. */
    private readonly known: { uuids: string[]; ints: number[] },
  ) {}

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  string(): string {
    return this.pick([
      () => '',
      () => 'a',
      () => this.pick(this.known.uuids),
      () => this.uuid(),
      () => 'not-a-uuid',
      () => 'nul\0inside',
      () => '\u0001\u0002\u001b[31mcontrol\u007f',
      () => '*',
      () => 'x'.repeat(1025),
      () => 'y'.repeat(20_000),
      () => (this.random() < 0.2 ? 'z'.repeat(1024 * 1024) : 'short'),
      () => '\ud800 lone surrogate',
      () => 'title with emoji \u{1F600}',
      () => 'A1B2C3',
    ])();
  }

  /** A random UUID from the seeded generator, so a run replays exactly. */
  uuid(): string {
    const hex = Array.from({ length: 32 }, () => Math.floor(this.random() * 16).toString(16)).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
  }

  int32(): number {
    return this.pick([0, 1, -1, 7, 2 ** 31 - 1, -(2 ** 31), ...this.known.ints, Math.floor(this.random() * 70_000)]);
  }

  /** int64 as a decimal string (protobufjs encodes it exactly). */
  int64(): string {
    return this.pick(['0', '1', '-1', '9223372036854775807', '-9223372036854775808', '9007199254740993', '86400', '253402300800', '-62135596801', String(this.int32())]);
  }

  value(field: protobuf.Field, depth: number): unknown {
    if (field.repeated) {
      const n = Math.floor(this.random() * 4);
      return Array.from({ length: n }, () => this.single(field, depth));
    }
    return this.single(field, depth);
  }

  private single(field: protobuf.Field, depth: number): unknown {
    const type = field.resolvedType;
    if (type instanceof protobuf.Enum) return this.pick([...Object.values(type.values), 99, -1]);
    if (type instanceof protobuf.Type) return depth > 3 ? {} : this.message(type, depth + 1);
    switch (field.type) {
      case 'string':
        return this.string();
      case 'bytes':
        return Buffer.from(Array.from({ length: Math.floor(this.random() * 64) }, () => Math.floor(this.random() * 256)));
      case 'bool':
        return this.random() < 0.5;
      case 'double':
      case 'float':
        return this.pick([0, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e308]);
      case 'int64':
      case 'uint64':
      case 'sint64':
      case 'fixed64':
      case 'sfixed64':
        return this.int64();
      default:
        return this.int32();
    }
  }

  message(type: protobuf.Type, depth = 0): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    // proto3 `optional` fields sit in synthetic oneofs named `_field`: plain fields here.
    const oneofs = type.oneofsArray.filter((o) => !o.name.startsWith('_'));
    const oneofMembers = new Set(oneofs.flatMap((o) => o.fieldsArray.map((f) => f.name)));
    for (const oneof of oneofs) {
      if (this.random() < 0.7) {
        const member = this.pick(oneof.fieldsArray);
        out[member.name] = this.value(member, depth);
      }
    }
    for (const field of type.fieldsArray) {
      if (oneofMembers.has(field.name)) continue;
      if (this.random() < 0.75) out[field.name] = this.value(field, depth);
    }
    if (type.fullName === '.google.protobuf.FieldMask' && this.random() < 0.5) out.paths = [this.pick(['*', 'title', 'nope', '', 'a.b', 'x'.repeat(2000)])];
    return out;
  }
}

describe('fuzz: every RPC with random and hostile input', () => {
  let system: System;
  let replica: Replica;
  let daemonToken: string;
  let known: { uuids: string[]; ints: number[] };

  beforeAll(async () => {
    system = await startSystem({ DATABASE_URL: inject('fuzzDatabaseUrl') });
    replica = await system.startReplica({ DAEMON_RPS: '1000000', DAEMON_BURST: '1000000' });
    const fleet = await provisionDevice(adminApi(system.write));
    daemonToken = fleet.token;
    known = { uuids: [fleet.device.uuid, fleet.account.uuid, fleet.tokenUuid], ints: [fleet.logicalId, fleet.device.physicalId] };
    await replica.synced();
  });
  afterAll(() => system?.stop());

  it('answers no INTERNAL or UNKNOWN and keeps both services serving', async () => {
    const random = prng(SEED);
    const gen = new Generator(random, known);
    const targets: Record<string, { address: string; key: string }> = {
      'titanbot.daemon.v1': { address: replica.service.address, key: daemonToken },
      'titanbot.feed.v1': { address: system.write.address, key: system.write.readerToken },
      'titanbot.admin.v1': { address: system.write.address, key: system.write.adminToken },
    };
    const clients = new Map<string, Client>();
    const clientOf = (address: string): Client => {
      let c = clients.get(address);
      if (!c) clients.set(address, (c = new Client(address, credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * 1024 * 1024 })));
      return c;
    };
    const bad: string[] = [];
    const seen = new Map<string, number>();
    let calls = 0;
    // The admin API last: it may delete the device whose token the daemon calls use.
    const order = (s: protobuf.Service): number => (s.fullName.includes('.admin.') ? 1 : 0);
    for (const service of loadProtoServices().services.sort((a, b) => order(a) - order(b))) {
      const pkg = service.fullName.slice(1, service.fullName.lastIndexOf('.'));
      const target = targets[pkg]!;
      const client = clientOf(target.address);
      for (const method of service.methodsArray) {
        const path = `/${service.fullName.slice(1)}/${method.name}`;
        const requestType = method.resolvedRequestType!;
        const stream = Boolean(method.responseStream);
        for (let i = 0; i < CALLS + RAW_CALLS; i++) {
          let bytes: Buffer;
          let shown: string;
          if (i < CALLS) {
            const object = gen.message(requestType);
            bytes = Buffer.from(requestType.encode(requestType.fromObject(object)).finish());
            shown = JSON.stringify(object, (_k, v: unknown) => (typeof v === 'string' && v.length > 80 ? `${v.slice(0, 20)}...(${v.length})` : v));
          } else {
            bytes = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
            shown = `raw ${bytes.toString('hex')}`;
          }
          const outcome = await rawCall(client, path, bytes, target.key, stream);
          calls++;
          // A rotated credential replaces the one the later calls present (the old may be revoked at once).
          if (outcome.response && (method.name === 'RotateAdminToken' || method.name === 'RotateToken')) {
            target.key = (method.resolvedResponseType!.decode(outcome.response) as unknown as { token: string }).token;
          }
          const key = `${pkg} ${status[outcome.code]}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          if (outcome.code === status.INTERNAL || outcome.code === status.UNKNOWN) {
            bad.push(`${path} #${i} ${status[outcome.code]} "${outcome.details}" for ${shown.slice(0, 400)}`);
          }
        }
      }
    }
    for (const c of clients.values()) c.close();
    expect(bad, `seed ${SEED}: ${calls} calls, codes ${JSON.stringify(Object.fromEntries(seen))}`).toEqual([]);
    // Every code class is exercised, not only refusals.
    for (const pkg of Object.keys(targets)) {
      expect(seen.get(`${pkg} OK`) ?? 0, `${pkg} calls answered OK`).toBeGreaterThan(0);
      expect(seen.get(`${pkg} INVALID_ARGUMENT`) ?? 0, `${pkg} calls refused as INVALID_ARGUMENT`).toBeGreaterThan(0);
    }
    expect(await healthStatus(system.write.address)).toBe('SERVING');
    expect(await healthStatus(replica.service.address)).toBe('SERVING');
  }, 240_000);
});
