/**
 * One source of truth for the C <-> JS protocol: every const enum member and constant of
 * src/backend/addon-types.ts that mirrors native/gev_proto.h equals the number the addon exports
 * under that name (`constants`), and every constant the addon exports has a TypeScript counterpart
 * here, so a record kind, op or flag added on one side only fails this test. The tables are typed
 * over each const enum's members, so a member missing from them fails the TypeScript build.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nativeAvailable, loadAddon } from '../src/backend/addon.js';
import {
  AddrFamily,
  kAddrSlots,
  kAddrU32,
  kHeaderU32,
  kIdGenerationMax,
  kIdSlotBits,
  kMaxExtBuffers,
  kMaxKeepAliveSeconds,
  kMaxListenerSlots,
  kOriginDial,
  kProxyHeaderMaxBytes,
  kProxyLocalBit,
  kProxyUnixBit,
  kProxyTlvShift,
  kSlotU32,
  kStatsLen,
  kUdpSlotBytes,
  ListenFlag,
  NoMemory,
  Op,
  ProxyReason,
  Rec,
} from '../src/backend/addon-types.js';

/** [C name without GEV_, TypeScript value] for each member of an enum. */
type Mirror<E> = { readonly [K in keyof E]: readonly [string, number] };

const kRec: Mirror<typeof Rec> = {
  Open: ['REC_OPEN', Rec.Open],
  Data: ['REC_DATA', Rec.Data],
  End: ['REC_END', Rec.End],
  Close: ['REC_CLOSE', Rec.Close],
  Dgram: ['REC_DGRAM', Rec.Dgram],
  Accepted: ['REC_ACCEPTED', Rec.Accepted],
  Queued: ['REC_QUEUED', Rec.Queued],
  AcceptError: ['REC_ACCEPT_ERROR', Rec.AcceptError],
  Proxy: ['REC_PROXY', Rec.Proxy],
  ProxyRefused: ['REC_PROXY_REFUSED', Rec.ProxyRefused],
  Relayed: ['REC_RELAYED', Rec.Relayed],
  TlsRefused: ['REC_TLS_REFUSED', Rec.TlsRefused],
};

const kProxyReason: Mirror<typeof ProxyReason> = {
  Signature: ['PROXY_E_SIGNATURE', ProxyReason.Signature],
  Version: ['PROXY_E_VERSION', ProxyReason.Version],
  Command: ['PROXY_E_COMMAND', ProxyReason.Command],
  Family: ['PROXY_E_FAMILY', ProxyReason.Family],
  V1Syntax: ['PROXY_E_V1_SYNTAX', ProxyReason.V1Syntax],
  TooLong: ['PROXY_E_TOO_LONG', ProxyReason.TooLong],
  AddressLength: ['PROXY_E_ADDRESS_LEN', ProxyReason.AddressLength],
  Tlv: ['PROXY_E_TLV', ProxyReason.Tlv],
  Timeout: ['PROXY_E_TIMEOUT', ProxyReason.Timeout],
  Closed: ['PROXY_E_CLOSED', ProxyReason.Closed],
};

const kNoMemory: Mirror<typeof NoMemory> = {
  Kernel: ['NOMEM_KERNEL', NoMemory.Kernel],
  Queue: ['NOMEM_QUEUE', NoMemory.Queue],
  Report: ['NOMEM_REPORT', NoMemory.Report],
};

const kOp: Mirror<typeof Op> = {
  Write: ['OP_WRITE', Op.Write],
  WriteExt: ['OP_WRITE_EXT', Op.WriteExt],
  Close: ['OP_CLOSE', Op.Close],
  End: ['OP_END', Op.End],
  KeepAlive: ['OP_KEEPALIVE', Op.KeepAlive],
  SendTo: ['OP_SENDTO', Op.SendTo],
  SendToExt: ['OP_SENDTO_EXT', Op.SendToExt],
  PauseReading: ['OP_PAUSE', Op.PauseReading],
  WatchQueue: ['OP_WATCH', Op.WatchQueue],
  Relay: ['OP_RELAY', Op.Relay],
};

const kListenFlag: Mirror<typeof ListenFlag> = {
  ReusePort: ['LISTEN_REUSEPORT', ListenFlag.ReusePort],
  V6Only: ['LISTEN_V6ONLY', ListenFlag.V6Only],
  HandOff: ['LISTEN_HANDOFF', ListenFlag.HandOff],
  Proxy: ['LISTEN_PROXY', ListenFlag.Proxy],
  Tls: ['LISTEN_TLS', ListenFlag.Tls],
};

const kAddrFamily: Mirror<typeof AddrFamily> = {
  None: ['ADDR_NONE', AddrFamily.None],
  Unix: ['ADDR_UNIX', AddrFamily.Unix],
  Inet4: ['ADDR_INET4', AddrFamily.Inet4],
  Inet6: ['ADDR_INET6', AddrFamily.Inet6],
};

const kConstants: readonly (readonly [string, number])[] = [
  ['HDR_U32', kHeaderU32],
  ['SLOT_U32', kSlotU32],
  ['ADDR_SLOTS', kAddrSlots],
  ['ADDR_U32', kAddrU32],
  ['ORIGIN_DIAL', kOriginDial],
  ['SLOT_BITS', kIdSlotBits],
  ['GEN_MAX', kIdGenerationMax],
  ['MAX_EXT', kMaxExtBuffers],
  ['UDP_SLOT', kUdpSlotBytes],
  ['MAX_LISTENERS', kMaxListenerSlots],
  ['KEEPALIVE_MAX_S', kMaxKeepAliveSeconds],
  ['STATS_LEN', kStatsLen],
  ['PROXY_HEADER_MAX', kProxyHeaderMaxBytes],
  ['PROXY_LOCAL', kProxyLocalBit],
  ['PROXY_UNIX', kProxyUnixBit],
  ['PROXY_TLV_SHIFT', kProxyTlvShift],
];

const kGroups: Record<string, readonly (readonly [string, number])[]> = {
  Rec: Object.values(kRec),
  NoMemory: Object.values(kNoMemory),
  Op: Object.values(kOp),
  ListenFlag: Object.values(kListenFlag),
  AddrFamily: Object.values(kAddrFamily),
  ProxyReason: Object.values(kProxyReason),
  constants: kConstants,
};

const skip = nativeAvailable() ? false : 'native addon not built';

describe('native protocol constants', () => {
  it("every TypeScript mirror equals the addon's exported value", { skip }, () => {
    const exported = loadAddon().constants;
    for (const [group, pairs] of Object.entries(kGroups)) {
      for (const [name, value] of pairs) {
        assert.ok(Object.hasOwn(exported, name), `${group}: the addon exports no ${name}`);
        assert.equal(value, exported[name], `${group}: ${name} is ${exported[name]} in C, ${value} in TypeScript`);
      }
    }
  });

  it('every constant the addon exports has a TypeScript counterpart', { skip }, () => {
    const mirrored = new Set(Object.values(kGroups).flatMap((pairs) => pairs.map(([name]) => name)));
    const missing = Object.keys(loadAddon().constants).filter((name) => !mirrored.has(name));
    assert.deepEqual(missing, [], `exported by native/gev_proto.h with no TypeScript mirror: ${missing.join(', ')}`);
  });

  it('the exported object is frozen and holds numbers only', { skip }, () => {
    const exported = loadAddon().constants;
    assert.ok(Object.isFrozen(exported));
    for (const [name, value] of Object.entries(exported)) assert.equal(typeof value, 'number', name);
  });

  it('each group mirrors distinct values, and record kind 7 stays retired', () => {
    for (const group of [kRec, kOp, kListenFlag, kNoMemory, kAddrFamily, kProxyReason]) {
      const values = Object.values(group).map(([, v]) => v);
      assert.equal(new Set(values).size, values.length);
    }
    assert.ok(!Object.values(kRec).some(([, v]) => v === 7));
  });
});
