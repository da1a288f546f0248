"""Retries with backoff, dead letters and replay, Retry-After, 410."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


def ms_of(sid):
    return int(sid.split('-')[0])


def iso_ms(s):
    import datetime
    d = datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
        tzinfo=datetime.timezone.utc)
    return int(d.timestamp() * 1000 + 0.5)


class WorkerRetry(h.TestCase):

    def test_fail_twice_then_delivered_on_attempt_3(self):
        counts = {}
        lock = threading.Lock()

        def handler(req, nth):
            with lock:
                k = req.headers['webhook-id']
                counts[k] = counts.get(k, 0) + 1
                return (500, {}, b'no') if counts[k] <= 2 else None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, secret = u.add_endpoint(rs, rcv.url('/a'))
            ids = [u.send(rs, 'x', '{"i":%d}' % i) for i in range(5)]
            with h.Worker(rs, env=u.env()) as w:
                self.assertTrue(rcv.wait_for(15, 20), w.log())
                self.assertEventually(lambda: len(u.log_entries(rs, ep)) == 15)
                self.assertEqual(0, w.stop())
            for r in rcv.requests:
                self.assertTrue(h.sw_verify(secret, r.headers, r.body))
            ok = [r for r in rcv.requests if counts[r.headers['webhook-id']] >= 3
                  and r.headers['x-hookq-attempt'] == '3']
            self.assertEqual(sorted(ids), sorted(r.headers['webhook-id'] for r in ok))
            by_event = {}
            for sid, f in u.log_entries(rs, ep):
                by_event.setdefault(f['event_id'], []).append((sid, f))
            sched = [200, 400]
            for eid in ids:
                lst = by_event[eid]
                self.assertEqual(['1', '2', '3'], [f['attempt'] for _, f in lst])
                self.assertEqual(['retry', 'retry', 'delivered'], [f['outcome'] for _, f in lst])
                self.assertEqual(['500', '500', '204'], [f['status'] for _, f in lst])
                self.assertEqual('no', lst[0][1]['response'])
                # the delay chosen (next_try - time the entry was written) is within
                # the schedule's +-20% jitter (the write follows the choice by a few ms)
                for (sid, f), base in zip(lst[:2], sched):
                    d = iso_ms(f['next_try']) - ms_of(sid)
                    self.assertLessEqual(d, base * 1.2 + 1, f)
                    self.assertGreaterEqual(d, base * 0.8 - 50, f)
            # each retry was signed afresh with its own delivery id
            self.assertEqual(15, len({r.headers['x-hookq-delivery-id'] for r in rcv.requests}))
            self.assertEqual(0, rs.call('ZCARD', u.DELAY))
            self.assertEqual(0, u.pel_count(rs, u.JOBS, 'deliver'))

    def test_always_failing_dead_after_exactly_n_then_replay(self):
        state = {'fail': True}

        def handler(req, nth):
            return (503, {}, b'down') if state['fail'] else None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            ids = [u.send(rs, 'x', '{"i":%d}' % i) for i in range(4)]
            with h.Worker(rs, env=u.env()) as w:
                self.assertEventually(lambda: len(u.entries(rs, u.DEAD)) == 4, 20)
                time.sleep(0.8)  # nothing more is attempted
                self.assertEqual(12, len(rcv.requests))
                dead = [f for _, f in u.entries(rs, u.DEAD)]
                self.assertEqual(sorted(ids), sorted(f['event_id'] for f in dead))
                for f in dead:
                    self.assertEqual(('job', ep, '3', '503', 'x'),
                                     (f['kind'], f['endpoint'], f['attempt'], f['status'],
                                      f['type']))
                    self.assertIn('503', f['error'])
                state['fail'] = False
                r = h.hookq(rs, 'dead', 'replay', '--all')
                self.assertEqual(0, r.returncode, r.stderr)
                self.assertTrue(rcv.wait_for(16, 10), w.log())
                time.sleep(0.3)
                self.assertEqual(0, w.stop())
            replayed = rcv.requests[12:]
            self.assertEqual(sorted(ids), sorted(r.headers['webhook-id'] for r in replayed))
            self.assertEqual({'1'}, {r.headers['x-hookq-attempt'] for r in replayed})
            self.assertEqual('0', rs.call('GET', 'hookq:{%s}:failures' % ep) or '0')

    def test_retry_after_honoured_and_clamped(self):
        def handler(req, nth):
            if nth == 0:
                return (429, {'Retry-After': '1'}, b'')
            if nth == 2:
                return (503, {'Retry-After': '3600'}, b'')
            return None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            u.add_endpoint(rs, rcv.url('/a'))
            with h.Worker(rs, env=u.env(retry_max_retry_after='1500ms')) as w:
                u.send(rs, 'x', '1')
                self.assertTrue(rcv.wait_for(2, 10), w.log())
                u.send(rs, 'x', '2')
                self.assertTrue(rcv.wait_for(4, 10), w.log())
                w.stop()
            r = rcv.requests
            # schedule says 200ms; the receiver asked for 1 s, then for an hour (clamped
            # to 1.5 s), and each retry waited at least that long
            self.assertGreaterEqual(r[1].t - r[0].t, 0.95)
            self.assertGreaterEqual(r[3].t - r[2].t, 1.45)
            self.assertEqual('2', r[3].headers['x-hookq-attempt'])

    def test_410_disables_at_once(self):
        def handler(req, nth):
            return (410, {}, b'gone') if req.path == '/gone' else None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/gone'))
            other, _ = u.add_endpoint(rs, rcv.url('/ops'), '--events', 'endpoint.disabled')
            with h.Worker(rs, env=u.env()) as w:
                u.send(rs, 'x', '1')
                self.assertTrue(rcv.wait_for(1, 10, path='/gone'))
                self.assertEventually(
                    lambda: rs.call('HGET', 'hookq:{%s}:endpoint' % ep, 'enabled') == 'false')
                # the operational event reaches its subscriber
                self.assertTrue(rcv.wait_for(1, 10, path='/ops'), w.log())
                time.sleep(0.5)
                u.send(rs, 'x', '2')
                time.sleep(1.0)
                self.assertEqual(0, w.stop())
            self.assertEqual(1, len(rcv.for_path('/gone')))
            hs = dict(zip(*[iter(rs.call('HGETALL', 'hookq:{%s}:endpoint' % ep))] * 2))
            self.assertIn('410', hs['disabled_reason'])
            self.assertTrue(hs['disabled_at'])
            body = json.loads(rcv.for_path('/ops')[0].body)
            self.assertEqual('endpoint.disabled', body['type'])
            self.assertEqual(ep, body['data']['endpoint_id'])
            (_, dead), = u.entries(rs, u.DEAD)
            self.assertEqual(('1', '410'), (dead['attempt'], dead['status']))


if __name__ == '__main__':
    h.main()
