"""hookq dead replay and hookq retry when the event is no longer in the events stream
(trimmed after events.retention): they say so, create no job (a job without its event only
becomes a new dead letter), exit 1, and still do the replays that can be done.

Dead letters are written the way the worker writes them (docs/keys.md, "Dead-letter stream
entry"); events are trimmed with XTRIM MINID, as the worker trims by events.retention."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DEAD = 'hookq:{q}:dead'
JOBS = 'hookq:{q}:jobs'
EVENTS = 'hookq:{q}:events'
GONE = 'is no longer in the events stream (past events.retention); not replayed'


class ReplayTrimmedTest(h.RedisTestCase):
    def cli(self, *args, code=0, **kw):
        r = h.hookq(self.rs, *args, **kw)
        self.assertEqual(r.returncode, code, 'hookq %s: %s %s' % (' '.join(args), r.stdout,
                                                                  r.stderr))
        return r

    def event(self, event_id):
        return self.rs.call('XADD', EVENTS, '*', 'id', event_id, 'type', 'order.paid',
                            'data', '{"order":42}')

    def dead_letter(self, sid, event_id, endpoint='ep_0recv'):
        return self.rs.call('XADD', DEAD, '*', 'kind', 'job', 'event', sid, 'event_id', event_id,
                            'type', 'order.paid', 'endpoint', endpoint, 'attempt', '6',
                            'error', 'HTTP 503', 'status', '503',
                            'failed_at', '2026-01-01T00:00:00.000Z')

    def trim_before(self, sid):
        """Drop every event older than sid, as trimming by events.retention does."""
        self.rs.call('XTRIM', EVENTS, 'MINID', sid)

    def test_replay_of_a_trimmed_event_says_so_and_queues_nothing(self):
        old = self.event('evt_old')
        keep = self.event('evt_keep')
        d = self.dead_letter(old, 'evt_old')
        self.trim_before(keep)
        self.assertEqual(self.rs.call('XRANGE', EVENTS, old, old), [])

        r = self.cli('dead', 'replay', d, code=1)
        self.assertIn('hookq: dead letter %s: event evt_old (%s) %s' % (d, old, GONE), r.stderr)
        self.assertIn('replayed 0 dead letters', r.stdout)
        self.assertIn('1 of 1 dead letters could not be replayed', r.stderr)
        self.assertEqual(self.rs.call('EXISTS', JOBS), 0)  # no job that would only die again
        self.assertEqual([e[0] for e in h.xrange_dicts(self.rs, DEAD)], [d])  # still listed

    def test_replay_of_a_present_event_still_works(self):
        sid = self.event('evt_here')
        d = self.dead_letter(sid, 'evt_here')
        r = self.cli('dead', 'replay', d)
        self.assertIn('replayed 1 dead letter', r.stdout)
        self.assertEqual(r.stderr, '')
        jobs = h.xrange_dicts(self.rs, JOBS)
        self.assertEqual([f for _, f in jobs],
                         [{'event': sid, 'endpoint': 'ep_0recv', 'attempt': '1'}])
        self.assertEqual(self.rs.call('XLEN', DEAD), 0)

    def test_the_others_are_still_replayed(self):
        gone1 = self.event('evt_gone1')
        gone2 = self.event('evt_gone2')
        here = self.event('evt_here')
        d_gone1 = self.dead_letter(gone1, 'evt_gone1', 'ep_0a')
        d_here = self.dead_letter(here, 'evt_here', 'ep_0b')
        d_gone2 = self.dead_letter(gone2, 'evt_gone2', 'ep_0c')
        self.trim_before(here)

        # by id: each that can be done is done; each that cannot is named; exit 1
        r = self.cli('dead', 'replay', d_gone1, d_here, d_gone2, code=1)
        self.assertIn('dead letter %s: event evt_gone1 (%s) %s' % (d_gone1, gone1, GONE), r.stderr)
        self.assertIn('dead letter %s: event evt_gone2 (%s) %s' % (d_gone2, gone2, GONE), r.stderr)
        self.assertIn('2 of 3 dead letters could not be replayed', r.stderr)
        self.assertIn('replayed 1 dead letter', r.stdout)
        self.assertEqual([(f['event'], f['endpoint']) for _, f in h.xrange_dicts(self.rs, JOBS)],
                         [(here, 'ep_0b')])
        self.assertEqual(sorted(e[0] for e in h.xrange_dicts(self.rs, DEAD)),
                         sorted([d_gone1, d_gone2]))

        # --all and --endpoint count them as failures too; --json lists them
        js = json.loads(self.cli('dead', 'replay', '--all', '--json', code=1).stdout)
        self.assertEqual(js['replayed'], 0)
        self.assertEqual(js['failed'], 2)
        self.assertEqual(sorted((f['id'], f['event']) for f in js['failed_ids']),
                         sorted([(d_gone1, gone1), (d_gone2, gone2)]))
        self.assertIn(GONE, js['failed_ids'][0]['reason'])
        r = self.cli('dead', 'replay', '--endpoint', 'ep_0c', code=1)
        self.assertIn('dead letter %s: event evt_gone2' % d_gone2, r.stderr)
        self.assertNotIn('dead letter %s:' % d_gone1, r.stderr)  # another endpoint's
        self.assertEqual(self.rs.call('XLEN', JOBS), 1)  # still only the one replayed job

    def test_dead_letter_with_a_bad_event_field(self):
        d = self.dead_letter('not-a-stream-id', 'evt_x')
        r = self.cli('dead', 'replay', d, code=1)
        self.assertIn("dead letter %s: its event field 'not-a-stream-id' is not a stream id" % d,
                      r.stderr)
        self.assertEqual(self.rs.call('EXISTS', JOBS), 0)

    def test_retry_of_a_trimmed_event(self):
        ep = json.loads(self.cli('endpoint', 'add', '--url', 'http://127.0.0.1:9/h').stdout)['id']
        # published with --id: the idempotency mark outlives the entry, so hookq knows the
        # event existed and says it was trimmed
        self.cli('send', 'order.paid', '{}', '--id', 'order-42')
        sid = self.rs.call('GET', 'hookq:{q}:idem:order-42')
        generated = self.cli('send', 'order.paid', '{}').stdout.strip()
        later = self.event('evt_later')
        self.trim_before(later)
        self.assertEqual(self.rs.call('XRANGE', EVENTS, sid, sid), [])

        r = self.cli('retry', 'order-42', code=1)
        self.assertEqual(r.stderr.strip(), 'hookq: event order-42 (%s) is no longer in the events '
                         'stream (past events.retention); not retried' % sid)
        r = self.cli('retry', generated, '--endpoint', ep, code=1)
        self.assertIn('event %s is not in the events stream' % generated, r.stderr)
        self.assertIn('events.retention', r.stderr)
        self.assertEqual(self.rs.call('EXISTS', JOBS), 0)
        # an event still there is retried as before
        js = json.loads(self.cli('retry', 'evt_later', '--json').stdout)
        self.assertEqual((js['event'], js['endpoints']), (later, [ep]))
        self.assertEqual(self.rs.call('XLEN', JOBS), 1)


if __name__ == '__main__':
    h.main()
