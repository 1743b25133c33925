// The consistent-hash ring of examples/multi-node/run.mjs (64 points per live node; a contact
// goes to the first point after its own hash, so removing a node moves only its contacts), and
// the data-message phase of the 4-node scenario (test and bench) over test/helpers/pg-node.mjs.
import { createHash } from 'node:crypto';

const hash = (text) => createHash('sha256').update(text).digest().readUInt32BE(0);

/** The owner of each contact among `nodes`: (contact) => node name. */
export function hashRing(nodes) {
  const points = nodes.flatMap((n) => Array.from({ length: 64 }, (_, i) => ({ at: hash(`${n}#${i}`), node: n }))).sort((a, b) => a.at - b.at);
  return (contact) => {
    const at = hash(contact);
    return (points.find((p) => p.at >= at) ?? points[0]).node;
  };
}

/**
 * Secure sessions on each live node (`talks[node]`: contacts it owns), then `messages` data
 * messages each way in each: the statements every node sent over the data messages alone.
 * Between the two, each node makes a trust change the others wait for: notifications arrive
 * in commit order, so once a node applied the others', it has read back the fingerprints the
 * others' AKEs stored, and nothing of that phase is left to count in the next.
 */
export async function talkOnNodes(nodes, talks, messages, dirOf) {
  const names = Object.keys(talks);
  await Promise.all(names.map((n) => nodes[n].call('secure', { contacts: talks[n], dir: dirOf(n) })));
  await Promise.all(
    names.map((n, i) => nodes[n].call('trust', { contact: `barrier-${n}`, hex: (0xba000 + i).toString(16).padStart(40, '0'), verified: true })),
  );
  const expected = (n) => names.filter((m) => m !== n).reduce((sum, m) => sum + talks[m].length + 1, 0);
  await Promise.all(names.map((n) => nodes[n].call('waitRemoteChanges', { n: expected(n) })));
  return Promise.all(names.map((n) => nodes[n].call('talk', { messages })));
}
