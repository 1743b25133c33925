// Options as a newcomer types them: a misspelt name is refused with the closest valid one,
// wherever options are taken, and a value out of range is shown in the message.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { OTR, Pacer, FileStore, PostgresStore } from 'protocol-otr';
import { ALICE, BOB, PROTO, T, closeAll, createPair, filesIn, openOTR, rejectsCode, tmpdir } from './helpers/harness.mjs';

after(closeAll);

const INVALID = 'ERR_OTR_INVALID_ARGUMENT';
const noop = () => {};

// The OtrError a synchronous call throws, checked for its code and message.
function refused(call, message, what) {
  assert.throws(call, (e) => e.code === INVALID && message.test(e.message), what);
}

test('misspelt options are refused with the nearest valid name (they were ignored): new OTR, OTR.open, FileStore, PostgresStore', T, async () => {
  // Where a misspelt file option used to put the files: the working directory.
  const cwd = tmpdir('otr-options-cwd-');
  const before = process.cwd();
  process.chdir(cwd);
  try {
    const files = filesIn(tmpdir());
    refused(() => new OTR({ privkeyFile: files.privkeysFile }), /new OTR\(\) has no option 'privkeyFile': did you mean 'privkeysFile'\?/, 'privkeyFile');
    refused(() => new OTR({ privateKeyFile: files.privkeysFile }), /'privateKeyFile': did you mean 'privkeysFile'\?/, 'privateKeyFile');
    refused(() => new OTR({ ...files, maxIncommingSize: 10 }), /'maxIncommingSize': did you mean 'maxIncomingSize'\?/, 'maxIncommingSize');
    // A name close to none is still answered with the nearest, and the whole list.
    refused(() => new OTR({ ...files, verbose: true }), /'verbose': did you mean '\w+'\? \(its options: privkeysFile, contactsFile, .*threads\)/, 'verbose');
    await rejectsCode(() => OTR.open({ ...files, stor: undefined }), INVALID, 'OTR.open({ stor })');
    await assert.rejects(OTR.open({ contactFile: files.contactsFile }), /OTR\.open\(\) has no option 'contactFile': did you mean 'contactsFile'\?/);
    refused(
      () => new FileStore({ instanceTagFile: files.instanceTagsFile }),
      /new FileStore\(\) has no option 'instanceTagFile': did you mean 'instanceTagsFile'\?/,
      'FileStore',
    );
    refused(
      () => new PostgresStore({ connection: 'postgres://localhost/x', prefx: 'a_' }),
      /new PostgresStore\(\) has no option 'prefx': did you mean 'prefix'\?/,
      'PostgresStore',
    );
    assert.deepEqual(fs.readdirSync(cwd), [], 'nothing was made in the working directory (no key, no lock files)');
    // The right names still work.
    const otr = openOTR(files);
    assert.equal(otr.privkeysFile, files.privkeysFile);
  } finally {
    process.chdir(before);
  }
});

test('misspelt channel, router and pacer options are refused (onSmpEvnt did nothing)', T, async () => {
  const otr = openOTR(tmpdir());
  const account = await otr.account(ALICE, PROTO);
  const bob = await account.contact(BOB);
  refused(
    () => bob.channel({ onWrite: noop, onRead: noop, onSmpEvnt: noop }),
    /contact\.channel\(\) has no option 'onSmpEvnt': did you mean 'onSmpEvent'\?/,
    'onSmpEvnt',
  );
  refused(() => bob.channel({ onWrite: noop, onRead: noop, maxMesageSize: 400 }), /'maxMesageSize': did you mean 'maxMessageSize'\?/, 'maxMesageSize');
  assert.equal(bob.existingChannel, undefined, 'no channel was opened');
  // The router checks when it is made, not when its first message arrives.
  refused(
    () => account.router({ onWrite: noop, onRead: noop, queryRetry: 5 }),
    /account\.router\(\) has no option 'queryRetry': did you mean 'queryRetries'\?/,
    'router',
  );
  refused(
    () => new Pacer({ linesPerSecond: 2, send: noop, maxDepthPerTaget: 10 }),
    /new Pacer\(\) has no option 'maxDepthPerTaget': did you mean 'maxDepthPerTarget'\?/,
    'Pacer',
  );
  await rejectsCode(() => bob.forget({ unverified: true }), INVALID, 'forget({ unverified })');
  await assert.rejects(otr.close({ endSession: true }), /otr\.close\(\) has no option 'endSession': did you mean 'endSessions'\?/);
  assert.equal(otr.closed, false, 'a refused close() leaves the instance open');
  assert.equal(account.router({ onWrite: noop, onRead: noop, queryRetries: 5 }).account, account);
});

test('range errors show the value given (they said "got number")', T, async () => {
  const files = filesIn(tmpdir());
  refused(() => new OTR({ ...files, maxIncomingSize: -1 }), /^maxIncomingSize must be an integer from 1 to 4294967295, got -1$/, 'maxIncomingSize');
  refused(() => new OTR({ ...files, threads: 0 }), /^threads must be an integer from 1 to 1024, got 0$/, 'threads');
  refused(() => new OTR({ ...files, maxContacts: 1.5 }), /, got 1\.5$/, 'maxContacts');
  refused(() => new OTR({ ...files, keyWorkWindow: '10' }), /, got "10"$/, 'keyWorkWindow');
  refused(() => new OTR({ ...files, evictUnverifiedFingerprints: 1 }), /^evictUnverifiedFingerprints must be a boolean, got 1$/, 'evictUnverifiedFingerprints');
  refused(() => new Pacer({ linesPerSecond: -2, send: noop }), /^linesPerSecond must be a positive number, got -2$/, 'linesPerSecond');
  const pair = await createPair();
  const contact = pair.alice.contact;
  await pair.alice.channel.close();
  refused(() => contact.channel({ onWrite: noop, onRead: noop, queryRetries: -1 }), /^queryRetries must be an integer from 0 to 100, got -1$/, 'queryRetries');
  refused(
    () => contact.channel({ onWrite: noop, onRead: noop, maxMessageSize: -5 }),
    /^maxMessageSize must be an integer from 0 to 2147483647, got -5$/,
    'maxMessageSize',
  );
  refused(() => contact.channel({ onWrite: noop, onRead: 'print' }), /^onRead must be a function, got "print"$/, 'onRead');
  const channel = pair.bob.channel;
  await assert.rejects(channel.createSymkey(-1, 'x'), { code: INVALID, message: 'use must be an integer from 0 to 4294967295, got -1' });
  await assert.rejects(channel.createSymkey(1, 42), { code: INVALID, message: 'useFor must be a string or a Uint8Array, got 42' });
  await assert.rejects(channel.read(42), { code: INVALID, message: 'input must be a string, got 42' });
});
