// A hostile nick change, in a process of its own (a crash must fail the test, not end the run):
// a contact forgotten with its verified fingerprint kept, a stranger renamed onto its name
// while a message under the stranger's old name is queued, then a forget of one contact and
// reads under the other's name. Prints the account's contacts as JSON and exits 0.
// argv: dir variant (0-3: which contact is forgotten, which name is read afterwards)
import { OTR } from 'protocol-otr';

const [dir, variantText] = process.argv.slice(2);
const variant = Number(variantText);
const otr = new OTR({ privkeysFile: `${dir}/otr.private_key`, contactsFile: `${dir}/otr.fingerprints`, instanceTagsFile: `${dir}/otr.instance_tags` });
otr.on('error', () => {});
const account = await otr.account('bridge', 'prpl-irc');
const verified = await account.contact('X', '0123456789abcdef0123456789abcdef01234567', true);
await verified.forget();
const router = account.router({ onWrite: () => {}, onRead: () => {} });
await router.read('S', '?OTRv3?');
const outcomes = await Promise.allSettled([router.read('S', 'queued under the old name'), router.rename('S', 'X'), router.read('S', '?OTRv3?')]);
const [first, second] = variant & 1 ? account.contacts().reverse() : account.contacts();
await first.forget().catch(() => {});
const name = variant & 2 ? second.name : first.name;
for (let i = 0; i < 5; i++) await router.read(name, '?OTRv3?').catch(() => {});
await router.read('X', '?OTRv3?').catch(() => {});
await router.read('S', '?OTRv3?').catch(() => {});
const view = account.contacts().map((c) => ({ name: c.name, fingerprints: c.fingerprints().map((f) => [f.hash, f.trust]) }));
const stats = otr.stats();
await otr.close();
console.log(JSON.stringify({ rename: outcomes[1].status === 'rejected' ? outcomes[1].reason.code : 'ok', view, channels: stats.channels }));
