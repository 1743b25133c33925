// Constants: TypeScript enums and the Perl flat names carry libotr 4.1's numeric values.
// The literals below are copied from /usr/include/libotr/proto.h, message.h and instag.h.

import test from 'node:test';
import assert from 'node:assert/strict';
import * as otr from 'protocol-otr';
import { Policy, ErrorCode, MessageEvent, SmpEvent, Instag } from 'protocol-otr';

// proto.h: OTRL_POLICY_*
const POLICY = {
  NEVER: 0x00,
  ALLOW_V1: 0x01,
  ALLOW_V2: 0x02,
  ALLOW_V3: 0x04,
  REQUIRE_ENCRYPTION: 0x08,
  SEND_WHITESPACE_TAG: 0x10,
  WHITESPACE_START_AKE: 0x20,
  ERROR_START_AKE: 0x40,
  MANUAL: 0x02 | 0x04,
  OPPORTUNISTIC: 0x02 | 0x04 | 0x10 | 0x20 | 0x40,
  ALWAYS: 0x02 | 0x04 | 0x08 | 0x20 | 0x40,
};

// message.h: OtrlErrorCode
const ERRCODE = { NONE: 0, ENCRYPTION_ERROR: 1, MSG_NOT_IN_PRIVATE: 2, MSG_UNREADABLE: 3, MSG_MALFORMED: 4 };

// message.h: OtrlSMPEvent
const SMPEVENT = {
  NONE: 0,
  ERROR: 1,
  ABORT: 2,
  CHEATED: 3,
  ASK_FOR_ANSWER: 4,
  ASK_FOR_SECRET: 5,
  IN_PROGRESS: 6,
  SUCCESS: 7,
  FAILURE: 8,
};

// message.h: OtrlMessageEvent
const MSGEVENT = {
  NONE: 0,
  ENCRYPTION_REQUIRED: 1,
  ENCRYPTION_ERROR: 2,
  CONNECTION_ENDED: 3,
  SETUP_ERROR: 4,
  MSG_REFLECTED: 5,
  MSG_RESENT: 6,
  RCVDMSG_NOT_IN_PRIVATE: 7,
  RCVDMSG_UNREADABLE: 8,
  RCVDMSG_MALFORMED: 9,
  LOG_HEARTBEAT_RCVD: 10,
  LOG_HEARTBEAT_SENT: 11,
  RCVDMSG_GENERAL_ERR: 12,
  RCVDMSG_UNENCRYPTED: 13,
  RCVDMSG_UNRECOGNIZED: 14,
  RCVDMSG_FOR_OTHER_INSTANCE: 15,
};

// instag.h: OTRL_INSTAG_*
const INSTAG = { BEST: 1, RECENT: 2, RECENT_RECEIVED: 3, RECENT_SENT: 4 };

test('Policy enum has libotr values (proto.h)', () => {
  for (const [k, v] of Object.entries(POLICY)) assert.equal(Policy[k], v, `Policy.${k}`);
});

test('Policy.MANUAL, OPPORTUNISTIC and ALWAYS are the libotr flag combinations', () => {
  assert.equal(Policy.MANUAL, 6);
  assert.equal(Policy.OPPORTUNISTIC, 118);
  assert.equal(Policy.ALWAYS, 110);
  assert.equal(Policy.ALWAYS & Policy.REQUIRE_ENCRYPTION, Policy.REQUIRE_ENCRYPTION);
  assert.equal(Policy.OPPORTUNISTIC & Policy.REQUIRE_ENCRYPTION, 0);
});

test('ErrorCode enum has libotr values (OtrlErrorCode)', () => {
  for (const [k, v] of Object.entries(ERRCODE)) assert.equal(ErrorCode[k], v, `ErrorCode.${k}`);
});

test('MessageEvent enum has libotr values (OtrlMessageEvent)', () => {
  for (const [k, v] of Object.entries(MSGEVENT)) assert.equal(MessageEvent[k], v, `MessageEvent.${k}`);
});

test('SmpEvent enum has libotr values (OtrlSMPEvent)', () => {
  for (const [k, v] of Object.entries(SMPEVENT)) assert.equal(SmpEvent[k], v, `SmpEvent.${k}`);
});

test('Instag enum has libotr values (instag.h)', () => {
  for (const [k, v] of Object.entries(INSTAG)) assert.equal(Instag[k], v, `Instag.${k}`);
});

test('Perl flat names POLICY_* are exported with libotr values', () => {
  for (const [k, v] of Object.entries(POLICY)) assert.equal(otr[`POLICY_${k}`], v, `POLICY_${k}`);
  assert.equal(otr.POLICY_DEFAULT, POLICY.OPPORTUNISTIC, 'POLICY_DEFAULT');
});

test('Perl flat names ERRCODE_* are exported with libotr values', () => {
  for (const [k, v] of Object.entries(ERRCODE)) assert.equal(otr[`ERRCODE_${k}`], v, `ERRCODE_${k}`);
});

test('Perl flat names MSGEVENT_* are exported with libotr values', () => {
  for (const [k, v] of Object.entries(MSGEVENT)) assert.equal(otr[`MSGEVENT_${k}`], v, `MSGEVENT_${k}`);
});

test('Perl flat names SMPEVENT_* are exported with libotr values', () => {
  for (const [k, v] of Object.entries(SMPEVENT)) assert.equal(otr[`SMPEVENT_${k}`], v, `SMPEVENT_${k}`);
});

test('Perl flat names INSTAG_* are exported with libotr values', () => {
  for (const [k, v] of Object.entries(INSTAG)) assert.equal(otr[`INSTAG_${k}`], v, `INSTAG_${k}`);
});

test('every name API.md lists exists in its enum', () => {
  for (const k of ['NEVER', 'MANUAL', 'OPPORTUNISTIC', 'ALWAYS', 'ALLOW_V2', 'ALLOW_V3', 'REQUIRE_ENCRYPTION',
    'SEND_WHITESPACE_TAG', 'WHITESPACE_START_AKE', 'ERROR_START_AKE']) {
    assert.equal(typeof Policy[k], 'number', `Policy.${k}`);
  }
  for (const k of ['NONE', 'ENCRYPTION_ERROR', 'MSG_NOT_IN_PRIVATE', 'MSG_UNREADABLE', 'MSG_MALFORMED']) {
    assert.equal(typeof ErrorCode[k], 'number', `ErrorCode.${k}`);
  }
  for (const k of Object.keys(MSGEVENT)) assert.equal(typeof MessageEvent[k], 'number', `MessageEvent.${k}`);
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
