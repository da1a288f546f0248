"""Jobs whose `event` field is not a stream id.

A jobs-stream entry naming an event by something that only looks like a stream id
(`1-2-3`, `5-`, `-1`, `--`, a number past 2^64) can never be fetched. It must still reach a
final state: dead-lettered once in P:{q}:dead as a malformed jobs entry (docs/keys.md:
kind job, source = its stream id, a reason saying the event id is not a stream id, its
fields as f.<name>), acknowledged and deleted from the jobs stream, while the good jobs
beside it are delivered once each. The same when the entries come back through reclaim
from a worker that died holding them.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402
import wkmore as m  # noqa: E402

BAD_EVENT_IDS = ['1-2-3', '5-', '-1', '--', '18446744073709551616-0']
N_GOOD = 10
TIMEOUT = 20
# The claim limit is out of reach, so a job stuck in the worker stays visibly pending
# instead of being dead-lettered late, as "claimed N times", by that safety net.
ENV = u.env(delivery_max_claims=1000)


class JobEventIds(h.TestCase):

    def setup_jobs(self, rs, ep):
        """Good jobs with a bad one after every other; returns (good ids, {bad job stream
        id: bad event value})."""
        sids = m.events_not_fanned_out(rs, ['good_%d' % n for n in range(N_GOOD)])
        bad = {}
        bi = 0
        for n, sid in enumerate(sids):
            rs.call('XADD', u.JOBS, '*', 'event', sid, 'endpoint', ep, 'attempt', '1')
            if n % 2 == 1 and bi < len(BAD_EVENT_IDS):
                v = BAD_EVENT_IDS[bi]
                bi += 1
                bad[rs.call('XADD', u.JOBS, '*', 'event', v, 'endpoint', ep, 'attempt', '1')] = v
        self.assertEqual(len(bad), len(BAD_EVENT_IDS))
        return {'good_%d' % n for n in range(N_GOOD)}, bad

    def check(self, rs, rcv, w, ep, want, bad):
        def settled():
            by = m.dead_by_source(rs)
            return (set(m.webhook_ids(rcv)) >= want and all(s in by for s in bad)
                    and m.pending(rs)[1] == 0)
        h.wait_until(settled, TIMEOUT, interval=0.2)
        time.sleep(0.5)
        self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])
        got = m.webhook_ids(rcv)
        self.assertEqual(dict(got), {k: 1 for k in want}, 'good jobs: each delivered once')
        by = m.dead_by_source(rs)
        missing = {sid: v for sid, v in bad.items() if sid not in by}
        self.assertEqual(missing, {}, 'jobs not dead-lettered as malformed entries within '
                         '%ds (job stream id: event); XPENDING jobs deliver = %r; dead '
                         'letters: %r' % (TIMEOUT, rs.call('XPENDING', u.JOBS, 'deliver'),
                                          [f for _, f in u.entries(rs, u.DEAD)][:3]))
        for sid, v in bad.items():
            entries = by[sid]
            msg = 'job %s (event %r): %r' % (sid, v, [m.brief(e) for e in entries])
            self.assertEqual(len(entries), 1, msg)
            d = dict(entries[0])
            self.assertEqual(d.get(b'kind'), b'job', msg)
            self.assertEqual(d.get(b'source'), sid.encode(), msg)
            reason = d.get(b'reason', b'').decode('utf-8', 'replace')
            self.assertRegex(reason, re.compile(r'\bevent\b', re.I), msg)
            self.assertRegex(reason, re.compile(r'not a (valid )?stream id', re.I), msg)
            self.assertEqual(d.get(b'f.event'), v.encode(), msg)
            self.assertEqual(d.get(b'f.endpoint'), ep.encode(), msg)
            self.assertEqual(d.get(b'f.attempt'), b'1', msg)
        self.assertEqual(set(by), set(bad), 'unexpected dead letters')
        self.assertEqual(rs.call('XPENDING', u.JOBS, 'deliver')[0], 0,
                         'jobs still pending: %r' % (rs.call('XPENDING', u.JOBS, 'deliver'),))
        left = {sid for sid, _ in m.xrange_raw(rs, u.JOBS)}
        self.assertFalse(left & set(bad), 'bad jobs still in the jobs stream')
        logged = [f for _, f in u.log_entries(rs, ep)]
        self.assertEqual(sorted(f['event_id'] for f in logged), sorted(want))
        self.assertEqual({f['outcome'] for f in logged}, {'delivered'})

    def test_bad_event_ids_read_fresh(self):
        """The worker reads the bad jobs itself (XREADGROUP >)."""
        with h.RedisServer() as rs, h.Receiver() as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/good'))
            want, bad = self.setup_jobs(rs, ep)
            with h.Worker(rs, env=ENV) as w:
                self.check(rs, rcv, w, ep, want, bad)

    def test_bad_event_ids_reclaimed_from_a_dead_worker(self):
        """Another consumer read every job and died: the worker gets them by reclaim."""
        with h.RedisServer() as rs, h.Receiver() as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/good'))
            want, bad = self.setup_jobs(rs, ep)
            rs.call('XGROUP', 'CREATE', u.JOBS, 'deliver', '0')
            read = rs.call('XREADGROUP', 'GROUP', 'deliver', 'died', 'COUNT', 1000,
                           'STREAMS', u.JOBS, '>')
            self.assertEqual(len(read[0][1]), N_GOOD + len(bad))
            with h.Worker(rs, env=ENV) as w:
                self.check(rs, rcv, w, ep, want, bad)


if __name__ == '__main__':
    h.main()
