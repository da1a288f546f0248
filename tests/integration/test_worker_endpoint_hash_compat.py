"""Endpoint hashes this version does not fully understand.

Fields this version does not know (written by a newer hookq) are ignored: the endpoint
still receives its events, whether the field was there when the worker started or is
added while it runs (a reload).

A hash with a known field this version cannot parse (`enabled maybe`) must not stop
deliveries to the other endpoints, and it is not a deleted endpoint: the jobs already made
for it (fanned out before the hash broke) are not acknowledged as "endpoint deleted"
(dropped) but kept, pending or scheduled again, so that once the hash is repaired the
endpoint receives every one of them.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402
import wkmore as m  # noqa: E402

VERSION = u.P + ':{q}:endpoints:version'
FUTURE = [('future_option', '1'), ('rate_limit', '{"per_second":5,"burst":10}'),
          ('transform.v2', 'jq:.data'), ('retry_schedule', '1s,2s')]
N = 10
TIMEOUT = 20


def touch(rs):
    """What every endpoint change does besides the hash: bump the version."""
    rs.call('INCR', VERSION)


class EndpointHashCompat(h.TestCase):

    def test_unknown_fields_are_ignored(self):
        """Unknown fields at start and added at run time; deliveries go on."""
        with h.RedisServer() as rs, h.Receiver() as rcv:
            ep, secret = u.add_endpoint(rs, rcv.url('/future'))
            key = m.ep_keys(ep)['endpoint']
            rs.call('HSET', key, *[x for kv in FUTURE[:2] for x in kv])
            touch(rs)
            with h.Worker(rs, env=u.env()) as w:
                first = [u.send(rs, 'compat.x', '{"i":%d}' % i) for i in range(N)]
                self.assertTrue(rcv.wait_for(N, TIMEOUT),
                                'got %d of %d with fields %r in the hash\n%s'
                                % (len(rcv.requests), N, FUTURE[:2], w.log()[-2000:]))
                rs.call('HSET', key, *[x for kv in FUTURE[2:] for x in kv])
                touch(rs)
                time.sleep(1.0)  # reloaded (endpoints.reload_interval 200ms)
                second = [u.send(rs, 'compat.x', '{"i":%d}' % i) for i in range(N, 2 * N)]
                self.assertTrue(rcv.wait_for(2 * N, TIMEOUT),
                                'got %d of %d after adding %r\n%s'
                                % (len(rcv.requests), 2 * N, FUTURE[2:], w.log()[-2000:]))
                self.assertTrue(h.wait_until(lambda: m.pending(rs) == (0, 0), 10))
                time.sleep(0.3)
            got = m.webhook_ids(rcv)
            self.assertEqual(dict(got), {i: 1 for i in first + second})
            for r in rcv.requests:
                self.assertTrue(h.sw_verify(secret, r.headers, r.body))
            log = [f for _, f in u.log_entries(rs, ep)]
            self.assertEqual(sorted(f['event_id'] for f in log), sorted(first + second))
            self.assertEqual({f['outcome'] for f in log}, {'delivered'})

    def test_unparsable_field_neither_drops_others_nor_its_own_jobs(self):
        """`enabled maybe` on one of two endpoints; then repaired."""
        # Long enough waits that a fix counting these as failed attempts would not run
        # out of attempts before the repair; the claim limit out of reach, so a job
        # kept pending is not dead-lettered by that safety net during the test.
        env = u.env(retry_schedule='2s 2s 2s 2s 2s 2s', delivery_max_claims=1000)
        with h.RedisServer() as rs, h.Receiver() as rcv:
            good, _ = u.add_endpoint(rs, rcv.url('/good'), '--events', 'compat.*')
            bad, _ = u.add_endpoint(rs, rcv.url('/broken'), '--events', 'compat.*')
            bad_key = m.ep_keys(bad)['endpoint']
            # Jobs for both endpoints, as a worker fanned them out before the hash broke.
            ids = ['compat_%d' % i for i in range(N)]
            for sid in m.events_not_fanned_out(rs, ids, 'compat.x'):
                for ep in (good, bad):
                    rs.call('XADD', u.JOBS, '*', 'event', sid, 'endpoint', ep, 'attempt', '1')
            rs.call('HSET', bad_key, 'enabled', 'maybe')
            touch(rs)
            with h.Worker(rs, env=env) as w:
                self.assertTrue(rcv.wait_for(N, TIMEOUT, path='/good'),
                                'the good endpoint got %d of %d\n%s'
                                % (len(rcv.for_path('/good')), N, w.log()[-2000:]))
                time.sleep(1.5)  # the broken endpoint's jobs have been looked at by now

                # Its jobs are kept: still in the jobs stream (pending or not yet read),
                # scheduled again in the delay zset, or (not expected) delivered.
                ev_of = {sid: f['id'] for sid, f in u.entries(rs, u.EVENTS)}
                kept = set()
                for _, f in u.entries(rs, u.JOBS):
                    if f.get('endpoint') == bad:
                        kept.add(ev_of.get(f.get('event')))
                for member in rs.call('ZRANGE', u.DELAY, 0, -1):
                    evsid, epid = member.split(' ')[:2]
                    if epid == bad:
                        kept.add(ev_of.get(evsid))
                kept |= set(m.webhook_ids(rcv, '/broken'))
                dropped = [ln for ln in w.log().splitlines()
                           if bad in ln and 'endpoint deleted' in ln]
                self.assertEqual(sorted(kept), sorted(ids),
                                 'jobs of the endpoint with enabled=maybe were not kept (%d of '
                                 '%d); jobs stream %d, delayed %d, pending %r; worker log: %r'
                                 % (len(kept & set(ids)), N, rs.call('XLEN', u.JOBS),
                                    rs.call('ZCARD', u.DELAY), m.pending(rs), dropped[:2]))
                self.assertEqual(dropped, [], 'its jobs were dropped as "endpoint deleted"')
                log = [f for _, f in u.log_entries(rs, bad)]
                self.assertFalse([f for f in log if f['outcome'] == 'dropped'
                                  or 'deleted' in f['error']], log)
                self.assertEqual(rs.call('EXISTS', bad_key), 1)

                # Repaired: every event reaches it.
                rs.call('HSET', bad_key, 'enabled', 'true')
                touch(rs)
                self.assertTrue(
                    h.wait_until(lambda: set(m.webhook_ids(rcv, '/broken')) >= set(ids),
                                 TIMEOUT),
                    'after the repair the endpoint got %d of %d\n%s'
                    % (len(set(m.webhook_ids(rcv, '/broken')) & set(ids)), N, w.log()[-2000:]))
                self.assertTrue(h.wait_until(lambda: m.pending(rs) == (0, 0)
                                             and rs.call('ZCARD', u.DELAY) == 0, 15),
                                'pending %r delayed %d' % (m.pending(rs),
                                                           rs.call('ZCARD', u.DELAY)))
                time.sleep(0.3)
            self.assertEqual(dict(m.webhook_ids(rcv, '/good')), {i: 1 for i in ids})
            self.assertEqual(dict(m.webhook_ids(rcv, '/broken')), {i: 1 for i in ids})
            good_log = [f for _, f in u.log_entries(rs, good)]
            self.assertEqual(sorted(f['event_id'] for f in good_log), sorted(ids))
            self.assertEqual({f['outcome'] for f in good_log}, {'delivered'})


if __name__ == '__main__':
    h.main()
