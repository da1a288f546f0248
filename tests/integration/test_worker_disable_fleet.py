"""Auto-disable across a fleet of workers: once the endpoint is disabled, it gets no more.

(a) Overshoot: every worker must stop sending to an endpoint as soon as it is disabled,
    not at its next endpoint reload: after the disable only the attempts already in
    flight may still reach the receiver (at most workers x delivery.per_endpoint).
(b) The threshold is reached, not hit: with the failure counter already above
    endpoints.disable_after (the operator lowered it), the next failure disables.
(c) Under maxmemory (noeviction) the disable must still reach the other workers and the
    endpoint.disabled event must still be published (today the version INCR and the
    XADD are refused, so other workers keep delivering to the disabled endpoint).
"""
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


def disabled_events(rs):
    return [json.loads(f['data']) for _, f in u.entries(rs, u.EVENTS)
            if f.get('type') == 'endpoint.disabled']


def fanned_out(rs):
    """Events the fanout group has read and acknowledged."""
    for g in rs.call('XINFO', 'GROUPS', u.EVENTS):
        g = dict(zip(g[::2], g[1::2]))
        if g['name'] == 'fanout':
            return (g['entries-read'] or 0) - g['pending']
    return 0


def ep_key(ep):
    return 'hookq:{%s}:endpoint' % ep


def wait_loaded(test, workers, timeout=20):
    for w in workers:
        test.assertEventually(lambda: 'endpoints: loaded 1' in w.log() or not w.alive(), timeout,
                              w.log()[-2000:])
        test.assertTrue(w.alive(), w.log()[-3000:])


class WorkerDisableFleet(h.TestCase):

    def test_no_attempts_after_the_disable_beyond_those_in_flight(self):
        workers, per, limit, n = 3, 4, 50, 600

        def handler(req, nth):
            return (500, {}, b'down')
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'), '--events', 'x')
            # the reload interval is long on purpose: learning of the disable must not
            # depend on it
            e = u.env(endpoints_disable_after=limit, endpoints_reload_interval='30s',
                      delivery_per_endpoint=per, delivery_concurrency=per,
                      retry_schedule='200ms 400ms', retry_jitter=0)
            ws = [h.Worker(rs, env=e, name='fleet%d' % i).start() for i in range(workers)]
            try:
                wait_loaded(self, ws)
                rs.pipeline([('XADD', u.EVENTS, '*', 'type', 'x', 'data', str(i))
                             for i in range(n)])
                self.assertEventually(lambda: rs.call('HGET', ep_key(ep), 'enabled') == 'false',
                                      30, 'never disabled; %d attempts' % len(rcv.requests))
                at_disable = len(rcv.requests)
                time.sleep(3)  # long enough for today's workers to send hundreds more
                total = len(rcv.requests)
            finally:
                for w in ws:
                    w.stop()
            after = total - limit
            self.assertLessEqual(
                after, workers * per,
                '%d attempts reached the receiver after the %dth consecutive failure '
                '(%d when the test saw enabled=false); at most %d (workers x per_endpoint) '
                'were in flight when it was disabled' % (after, limit, at_disable - limit,
                                                         workers * per))
            self.assertEqual(1, len(disabled_events(rs)))
            self.assertGreaterEqual(total, limit)

    def test_counter_already_over_a_lowered_threshold_disables_on_the_next_failure(self):
        def handler(req, nth):
            return (500, {}, b'down')
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'), '--events', 'x')
            fkey = 'hookq:{%s}:failures' % ep
            rs.call('SET', fkey, '10')  # counted while disable_after was higher
            e = u.env(endpoints_disable_after=5, retry_schedule='1h')
            with h.Worker(rs, env=e) as w:
                u.xadd_event(rs, 'x', '1')
                self.assertTrue(rcv.wait_for(1, 10), w.log()[-3000:])
                self.assertEventually(lambda: rs.call('GET', fkey) == '11', 10)
                ok = h.wait_until(lambda: rs.call('HGET', ep_key(ep), 'enabled') == 'false', 5)
                self.assertTrue(ok, 'failure 11 with disable_after 5 did not disable the '
                                'endpoint (enabled=%s)' % rs.call('HGET', ep_key(ep), 'enabled'))
                self.assertEventually(lambda: len(disabled_events(rs)) == 1, 10)
                self.assertEqual(0, w.stop())
            (d,) = disabled_events(rs)
            self.assertEqual((ep, 11), (d['endpoint_id'], d['failures']))
            self.assertEqual(1, len(rcv.requests))

    def test_disable_while_redis_is_full_reaches_the_other_workers(self):
        # Two workers with a long reload interval, both started before the disable; every
        # attempt fails, and keeps coming back (retry every 300 ms) while Redis is full.
        limit, n = 5, 16
        gate = threading.Event()

        def handler(req, nth):
            gate.wait(60)  # no attempt finishes before Redis is full
            time.sleep(0.05)
            return (500, {}, b'down')
        args = ['--maxmemory', '256mb', '--maxmemory-policy', 'noeviction']
        with h.RedisServer(args=args) as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'), '--events', 'x')
            e = u.env(endpoints_disable_after=limit, endpoints_reload_interval='30s',
                      delivery_concurrency=4, delivery_per_endpoint=2,
                      retry_schedule=' '.join(['300ms'] * 40), retry_jitter=0,
                      log_level='info')
            ws = [h.Worker(rs, env=e, name='full%d' % i).start() for i in range(2)]
            try:
                wait_loaded(self, ws)
                for i in range(n):
                    u.xadd_event(rs, 'x', str(i))
                # every job exists and each worker has some before Redis fills up
                self.assertEventually(lambda: fanned_out(rs) == n and len(rcv.requests) >= 4, 20,
                                      'events fanned out: %d of %d, attempts %d'
                                      % (fanned_out(rs), n, len(rcv.requests)))
                r = h.Resp(rs.port)
                blob = 'x' * 65536
                for i in range(64):
                    r.call('SET', 'junk:%d' % i, blob)
                used = int(re.search(r'used_memory:(\d+)', r.call('INFO', 'memory')).group(1))
                r.call('CONFIG', 'SET', 'maxmemory', used - 1024 * 1024)
                with self.assertRaisesRegex(h.RedisError, 'OOM'):
                    r.call('SET', 'probe', '1')
                gate.set()

                self.assertEventually(lambda: rs.call('HGET', ep_key(ep), 'enabled') == 'false',
                                      20, 'never disabled; %d attempts' % len(rcv.requests))
                t_dis = time.monotonic()
                time.sleep(2)  # attempts in flight at the disable finish meanwhile
                c1 = len(rcv.requests)
                time.sleep(3)
                c2, t2 = len(rcv.requests), time.monotonic() - t_dis
                with self.assertRaisesRegex(h.RedisError, 'OOM'):
                    r.call('SET', 'probe', '1')  # still full all along
                # room again: the event must be there (written while full, or now)
                r.call('CONFIG', 'SET', 'maxmemory', '256mb')
                r.close()
                h.wait_until(lambda: disabled_events(rs), 10)
                evs = disabled_events(rs)
                time.sleep(2)
                c3 = len(rcv.requests)
                logs = [w.log() for w in ws]
                for w in ws:
                    self.assertTrue(w.alive(), w.log()[-3000:])
            finally:
                for w in ws:
                    w.stop()
            for i, log in enumerate(logs):  # both workers really delivered to it
                self.assertIn('-> retry', log, 'worker full%d never attempted' % i)
            self.assertEqual(c1, c2, '%d attempts reached the receiver between %.0f s and '
                             '%.0f s after the endpoint was disabled (Redis full)'
                             % (c2 - c1, 2, t2))
            self.assertEqual(c2, c3, '%d attempts after Redis had room again' % (c3 - c2))
            self.assertEqual(1, len(evs), 'endpoint.disabled events: %r' % evs)
            self.assertEqual(ep, evs[0]['endpoint_id'])


if __name__ == '__main__':
    h.main()
