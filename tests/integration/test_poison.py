"""Poison input: 10,000 malformed events-stream entries
interleaved with 500 good events.

The worker must not crash; every malformed entry must land in P:{q}:dead exactly once
(kind event, source = its stream id, a reason naming the offending field and, where
there is one word for it, the problem, and its original fields as f.<name>, cut at
64 KiB); every good event must be delivered exactly once to its subscriber with its data
verbatim; and the fanout and deliver groups must have nothing pending at the end.
"""
import json
import re

import harness as h
from test_security_ssrf import add_endpoint

P = 'hookq'
EVENTS = P + ':{q}:events'
JOBS = P + ':{q}:jobs'
DEAD = P + ':{q}:dead'

MAX_PAYLOAD = 4096          # events.max_payload for this test
DEAD_FIELD_CAP = 64 * 1024  # docs/keys.md: original fields cut at 64 KiB
N_BAD = 10000
N_GOOD = 500
GOOD_TYPE = 'poison.good'


def deep(n):
    return b'[' * n + b']' * n


# (name, fields, field the reason must name, regex the reason must also match or None).
# Every entry is wrong in exactly one way, so the reason has one right answer.
KINDS = [
    ('not-json', {b'type': b'poison.bad', b'data': b'{"a":'}, 'data', r'json'),
    ('json-trailing-garbage', {b'type': b'poison.bad', b'data': b'{"a":1} x'}, 'data', None),
    ('empty-data', {b'type': b'poison.bad', b'data': b''}, 'data', None),
    ('missing-type', {b'data': b'{"a":1}'}, 'type', None),
    ('missing-data', {b'type': b'poison.bad'}, 'data', None),
    ('bad-type-chars', {b'type': b'bad type!', b'data': b'{}'}, 'type', None),
    ('empty-type', {b'type': b'', b'data': b'{}'}, 'type', None),
    ('type-too-long', {b'type': b'a' * 129, b'data': b'{}'}, 'type', None),
    ('ts-not-a-number', {b'type': b'poison.bad', b'data': b'{}', b'ts': b'yesterday'}, 'ts',
     None),
    ('data-over-max-payload', {b'type': b'poison.bad', b'data': b'"' + b'x' * MAX_PAYLOAD + b'"'},
     'data', r'larg|max|payload|size|bytes|long|limit|big'),
    ('nul-in-data', {b'type': b'poison.bad', b'data': b'{"a":"x\x00y"}'}, 'data',
     r'nul|\\0|zero'),
    ('nul-in-type', {b'type': b'poison\x00bad', b'data': b'{}'}, 'type', None),
    ('invalid-utf8', {b'type': b'poison.bad', b'data': b'{"a":"\xff\xfe"}'}, 'data',
     r'utf|unicode|decode|encoding'),
    ('overlong-utf8', {b'type': b'poison.bad', b'data': b'{"a":"\xc0\xaf"}'}, 'data',
     r'utf|unicode|decode|encoding'),
    ('nesting-1000', {b'type': b'poison.bad', b'data': deep(1000)}, 'data', r'dep|nest|deep'),
    ('id-with-dot', {b'type': b'poison.bad', b'data': b'{}', b'id': b'evt.1'}, 'id', None),
    ('id-too-long', {b'type': b'poison.bad', b'data': b'{}', b'id': b'a' * 129}, 'id', None),
    ('empty-id', {b'type': b'poison.bad', b'data': b'{}', b'id': b''}, 'id', None),
    ('bad-tenant', {b'type': b'poison.bad', b'data': b'{}', b'tenant': b'bad tenant!'},
     'tenant', None),
]
# A few entries far over both max_payload and the 64 KiB dead-letter field cap.
HUGE = ('data-200k', {b'type': b'poison.bad', b'data': b'"' + b'y' * 200000 + b'"'}, 'data',
        r'larg|max|payload|size|bytes|long|limit|big')
N_HUGE = 5


def xrange_raw(rs, key):
    """Every entry of a stream as (id, {bytes field: bytes value}), read in pages."""
    out = []
    start = b'-'
    while True:
        page = rs.call('XRANGE', key, start, '+', 'COUNT', 1000, raw=True)
        if not page:
            return out
        for eid, fields in page:
            out.append((eid.decode(), dict(zip(fields[0::2], fields[1::2]))))
        start = b'(' + page[-1][0]


class PoisonTest(h.TestCase):

    def test_malformed_entries_are_dead_lettered_and_good_ones_delivered(self):
        env = {'HOOKQ_EVENTS_MAX_PAYLOAD': str(MAX_PAYLOAD), 'HOOKQ_LOG_LEVEL': 'info'}
        with h.RedisServer() as rs, h.Receiver() as rcv:
            eid, secret = add_endpoint(rs, rcv.url('/good'))
            # Build the interleaving: every 21st entry is good.
            plan = []
            bad_i = 0
            for i in range(N_BAD + N_GOOD):
                if i % 21 == 20:
                    n = len([p for p in plan if p[0] == 'good'])
                    data = ('{"n":%d,"s":"\u00e9t\u00e9 \u2713"}' % n).encode()
                    plan.append(('good', {b'id': b'good_%d' % n, b'type': GOOD_TYPE.encode(),
                                          b'data': data}, None, None))
                elif bad_i < N_HUGE:
                    plan.append(HUGE)
                    bad_i += 1
                else:
                    plan.append(KINDS[bad_i % len(KINDS)])
                    bad_i += 1
            self.assertEqual(bad_i, N_BAD)
            self.assertEqual(len([p for p in plan if p[0] == 'good']), N_GOOD)

            sources = {}  # stream id -> plan entry
            for chunk in range(0, len(plan), 500):
                part = plan[chunk:chunk + 500]
                cmds = [['XADD', EVENTS, '*'] + [x for kv in p[1].items() for x in kv]
                        for p in part]
                for sid, p in zip(rs.pipeline(cmds), part):
                    self.assertIsInstance(sid, str, sid)
                    sources[sid] = p

            with h.Worker(rs, env=env) as w:
                self.assertEventually(
                    lambda: rs.call('XLEN', DEAD) >= N_BAD or not w.alive(), 300,
                    'only %s of %d bad entries dead-lettered' % (rs.call('XLEN', DEAD), N_BAD))
                self.assertTrue(rcv.wait_for(N_GOOD, 60, path='/good'),
                                'only %d good events delivered' % len(rcv.for_path('/good')))
                self.assertEventually(
                    lambda: rs.call('XPENDING', EVENTS, 'fanout')[0] == 0
                    and rs.call('XPENDING', JOBS, 'deliver')[0] == 0, 30,
                    'entries still pending: events %r jobs %r' % (
                        rs.call('XPENDING', EVENTS, 'fanout'),
                        rs.call('XPENDING', JOBS, 'deliver')))
                self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])

                # Dead letters: one per bad entry, each explaining itself.
                dead = xrange_raw(rs, DEAD)
                by_source = {}
                for _, f in dead:
                    src = f.get(b'source', b'').decode()
                    by_source.setdefault(src, []).append(f)
                bad_sources = {sid for sid, p in sources.items() if p[0] != 'good'}
                good_sources = {sid for sid, p in sources.items() if p[0] == 'good'}
                self.assertFalse(set(by_source) & good_sources, 'a good event was dead-lettered')
                self.assertEqual(set(by_source), bad_sources)
                seen_kinds = set()
                for sid in sorted(bad_sources):
                    name, fields, field, problem = sources[sid]
                    entries = by_source[sid]
                    msg = '%s (%s): %r' % (name, sid, [
                        {k: v[:200] for k, v in e.items()} for e in entries])
                    self.assertEqual(len(entries), 1, msg)
                    e = entries[0]
                    self.assertEqual(e.get(b'kind'), b'event', msg)
                    reason = e.get(b'reason', b'').decode('utf-8', 'replace')
                    self.assertRegex(reason, r'(?i)\b%s\b' % re.escape(field), msg)
                    if problem:
                        self.assertRegex(reason, re.compile(problem, re.I), msg)
                    for k, v in fields.items():
                        kept = e.get(b'f.' + k)
                        if len(v) > DEAD_FIELD_CAP:
                            self.assertEqual(kept, v[:DEAD_FIELD_CAP], msg)
                            self.assertEqual(e.get(b'truncated'), b'1', msg)
                        else:
                            self.assertEqual(kept, v, msg)
                    seen_kinds.add(name)
                self.assertEqual(seen_kinds, {k[0] for k in KINDS} | {HUGE[0]})

                # Good events: each exactly once, signed, data verbatim.
                reqs = rcv.for_path('/good')
                ids = [r.headers.get('webhook-id') for r in reqs]
                self.assertEqual(sorted(ids), sorted('good_%d' % n for n in range(N_GOOD)))
                published = {p[1][b'id'].decode(): p[1][b'data'] for p in sources.values()
                             if p[0] == 'good'}
                for r in reqs:
                    wid = r.headers['webhook-id']
                    self.assertTrue(h.sw_verify(secret, r.headers, r.body), wid)
                    self.assertIn(published[wid], r.body)
                    body = json.loads(r.body)
                    self.assertEqual(body['type'], GOOD_TYPE)
                    self.assertEqual(body['data'], json.loads(published[wid]))


if __name__ == '__main__':
    h.main()
