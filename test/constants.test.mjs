// Constants: the TypeScript enums and the Perl flat names carry libotr 4.1's numeric values,
// as the addon compiled them from libotr's headers (libotr.constants).

import test from 'node:test';
import assert from 'node:assert/strict';
import * as otr from 'protocol-otr';
import { Policy, ErrorCode, MessageEvent, SmpEvent, Instag, libotr } from 'protocol-otr';

// The flat names lib/constants.ts exports, and the enum each belongs to.
const FAMILIES = { POLICY_: Policy, ERRCODE_: ErrorCode, SMPEVENT_: SmpEvent, MSGEVENT_: MessageEvent, INSTAG_: Instag };
const flatNames = Object.keys(otr).filter((k) => Object.keys(FAMILIES).some((prefix) => k.startsWith(prefix)));

test("every flat name and enum member has the value the addon read from libotr's headers", () => {
  const fromHeaders = libotr.constants;
  assert.ok(flatNames.length >= 46, `flat names exported: ${flatNames.length}`);
  for (const name of flatNames) {
    assert.equal(typeof fromHeaders[name], 'number', `the addon reports OTRL_${name}`);
    assert.equal(otr[name], fromHeaders[name], `${name}: lib/constants.ts has ${otr[name]}, libotr's headers ${fromHeaders[name]}`);
  }
  // The enums: each member is its flat name (POLICY_DEFAULT is an alias with no member).
  let members = 0;
  for (const [prefix, enumeration] of Object.entries(FAMILIES)) {
    for (const [key, value] of Object.entries(enumeration)) {
      if (typeof value !== 'number') continue; // TypeScript's reverse mapping
      members++;
      assert.equal(value, fromHeaders[prefix + key], `${prefix}${key} (enum member ${key}) against libotr's headers`);
    }
  }
  assert.equal(members, flatNames.length - 1, 'one flat name per enum member, plus POLICY_DEFAULT');
  // Nothing the headers give is missing from lib/constants.ts but the symmetric key length.
  assert.deepEqual(
    Object.keys(fromHeaders).filter((k) => !flatNames.includes(k)),
    ['EXTRAKEY_BYTES'],
  );
  assert.equal(otr.POLICY_DEFAULT, Policy.OPPORTUNISTIC);
});

test('Policy.MANUAL, OPPORTUNISTIC and ALWAYS are the libotr flag combinations', () => {
  assert.equal(Policy.MANUAL, Policy.ALLOW_V2 | Policy.ALLOW_V3);
  assert.equal(Policy.OPPORTUNISTIC, Policy.MANUAL | Policy.SEND_WHITESPACE_TAG | Policy.WHITESPACE_START_AKE | Policy.ERROR_START_AKE);
  assert.equal(Policy.ALWAYS, Policy.MANUAL | Policy.REQUIRE_ENCRYPTION | Policy.WHITESPACE_START_AKE | Policy.ERROR_START_AKE);
});

test('every name API.md lists exists in its enum', () => {
  for (const k of [
    'NEVER',
    'MANUAL',
    'OPPORTUNISTIC',
    'ALWAYS',
    'ALLOW_V2',
    'ALLOW_V3',
    'REQUIRE_ENCRYPTION',
    'SEND_WHITESPACE_TAG',
    'WHITESPACE_START_AKE',
    'ERROR_START_AKE',
  ]) {
    assert.equal(typeof Policy[k], 'number', `Policy.${k}`);
  }
  for (const k of ['NONE', 'ENCRYPTION_ERROR', 'MSG_NOT_IN_PRIVATE', 'MSG_UNREADABLE', 'MSG_MALFORMED']) {
    assert.equal(typeof ErrorCode[k], 'number', `ErrorCode.${k}`);
  }
  for (const k of ['NONE', 'CHEATED', 'IN_PROGRESS', 'SUCCESS', 'FAILURE', 'ABORT', 'ERROR']) {
    assert.equal(typeof SmpEvent[k], 'number', `SmpEvent.${k}`);
  }
  for (const k of ['BEST', 'RECENT', 'RECENT_RECEIVED', 'RECENT_SENT']) {
    assert.equal(typeof Instag[k], 'number', `Instag.${k}`);
  }
});

test('OtrError is exported and is an Error subclass with a code', () => {
  assert.equal(typeof otr.OtrError, 'function');
  assert.ok(otr.OtrError.prototype instanceof Error);
});

test('the numbers lib/native.ts shares with the addon (enums, slot counts) are checked at load, and a mismatch is named', async () => {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const native = require('../dist/native.js');
  // Loading succeeded (libotr.constants works), so the build agrees with lib/native.ts.
  assert.ok(libotr.version);
  const addonNumbers = { BATCH_SLOTS: native.BATCH_SLOTS, EFFECT_SLOTS: native.EFFECT_SLOTS };
  assert.match(native.sharedNumbersMismatch(addonNumbers), /disagree on \d+ shared number\(s\).*rebuild \(npm run compile\)/);
  assert.equal(native.sharedNumbersMismatch(undefined)?.includes('EffectKind.Write (addon undefined, lib 1)'), true);
});

test('an addon built from another contract is refused at load even when every enum agrees: the contract digest differs', async () => {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const native = require('../dist/native.js');
  const { SHARED_NUMBERS } = require('../dist/native-contract.js');
  assert.equal(native.sharedNumbersMismatch({ ...SHARED_NUMBERS }), undefined);
  // Another op argument or effect field changes no enum, only the digest.
  const otherContract = { ...SHARED_NUMBERS, CONTRACT_DIGEST: SHARED_NUMBERS.CONTRACT_DIGEST + 1 };
  const why = native.sharedNumbersMismatch(otherContract);
  assert.match(
    why,
    /disagree on 1 shared number\(s\): CONTRACT_DIGEST \(addon \d+, lib \d+\): the addon was built from another src-native\/contract\.json; rebuild \(npm run compile\)/,
  );
});
