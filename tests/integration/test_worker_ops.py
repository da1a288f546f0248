"""Sharing work, endpoint changes, slow endpoints, bad entries, rotation."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


class WorkerOps(h.TestCase):

    def test_three_workers_share_one_stream(self):
        with h.RedisServer() as rs, h.Receiver() as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            ws = [h.Worker(rs, env=u.env(delivery_batch=4), name='w%d' % i).start()
                  for i in range(3)]
            try:
                time.sleep(0.5)
                n = 300
                ids = set()
                for i in range(n):
                    ids.add(u.xadd_event(rs, 'task:x', '{"i":%d}' % i, id='e%d' % i) and 'e%d' % i)
                    if i % 50 == 0:
                        time.sleep(0.05)  # let all three get a share
                self.assertTrue(rcv.wait_for(n, 30))
                got = set(r.headers['webhook-id'] for r in rcv.requests)
                self.assertEqual(ids, got)  # every event, at least once
                self.assertEventually(lambda: u.pel_count(rs, u.JOBS, 'deliver') == 0)
                workers = {}
                for _, f in u.log_entries(rs, ep):
                    workers[f['worker']] = workers.get(f['worker'], 0) + 1
                self.assertEqual({'w0', 'w1', 'w2'}, set(workers), workers)
            finally:
                for w in ws:
                    self.assertEqual(0, w.stop())

    def test_disabled_gets_nothing_and_new_endpoint_without_restart(self):
        with h.RedisServer() as rs, h.Receiver() as rcv:
            on, _ = u.add_endpoint(rs, rcv.url('/on'))
            off, _ = u.add_endpoint(rs, rcv.url('/off'))
            r = h.hookq(rs, 'endpoint', 'disable', off)
            self.assertEqual(0, r.returncode, r.stderr)
            with h.Worker(rs, env=u.env()) as w:
                u.send(rs, 'a.b', '1')
                self.assertTrue(rcv.wait_for(1, 10, path='/on'))
                late, _ = u.add_endpoint(rs, rcv.url('/late'))
                time.sleep(0.5)  # > endpoints.reload_interval
                u.send(rs, 'a.c', '2')
                self.assertTrue(rcv.wait_for(1, 10, path='/late'), w.log())
                self.assertTrue(rcv.wait_for(2, 10, path='/on'))
                # an event targeted at the disabled endpoint fans out to nothing, and a
                # job for it (e.g. a retry) is acknowledged with a log entry, not sent
                u.send(rs, 'a.d', '3', '--endpoint', off)
                ev = u.xadd_event(rs, 'a.e', '4')
                rs.call('XADD', u.JOBS, '*', 'event', ev, 'endpoint', off, 'attempt', '2')
                self.assertEventually(lambda: any(f['outcome'] == 'disabled'
                                                  for _, f in u.log_entries(rs, off)))
                time.sleep(0.3)
                self.assertEqual(0, w.stop())
            self.assertEqual([], rcv.for_path('/off'))
            self.assertEqual(0, u.pel_count(rs, u.JOBS, 'deliver'))

    def test_slow_endpoint_does_not_hold_back_fast_one(self):
        def handler(req, nth):
            if req.path == '/slow':
                time.sleep(4)
            return None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            u.add_endpoint(rs, rcv.url('/slow'), '--events', 'slow')
            u.add_endpoint(rs, rcv.url('/fast'), '--events', 'fast')
            e = u.env(delivery_timeout='10s', delivery_visibility_timeout='20s',
                      delivery_concurrency=8, delivery_per_endpoint=2)
            with h.Worker(rs, env=e) as w:
                rs.pipeline([['XADD', u.EVENTS, '*', 'type', 'slow', 'data', str(i)]
                             for i in range(20)])
                rs.pipeline([['XADD', u.EVENTS, '*', 'type', 'fast', 'data', str(i)]
                             for i in range(20)])
                # the fast ones all arrive while the slow receiver is still on its
                # first requests (at most per_endpoint of them at a time)
                self.assertTrue(rcv.wait_for(20, 15, path='/fast'), w.log())
                slow_done = len(rcv.for_path('/slow'))
                self.assertLessEqual(slow_done, 4)
                w.stop(timeout=1)

    def test_malformed_event_dead_lettered_and_next_delivered(self):
        with h.RedisServer() as rs, h.Receiver() as rcv:
            u.add_endpoint(rs, rcv.url('/a'))
            bad = rs.call('XADD', u.EVENTS, '*', 'type', 'bad type!', 'data', '{"x":1}')
            bad2 = rs.call('XADD', u.EVENTS, '*', 'type', 'ok', 'data', '{not json')
            good = u.xadd_event(rs, 'ok', '{"y":2}')
            with h.Worker(rs, env=u.env()) as w:
                self.assertTrue(rcv.wait_for(1, 10), w.log())
                self.assertEventually(lambda: len(u.entries(rs, u.DEAD)) == 2)
                time.sleep(0.2)
                self.assertEqual(0, w.stop())
            dead = {f['source']: f for _, f in u.entries(rs, u.DEAD)}
            self.assertEqual({bad, bad2}, set(dead))
            self.assertEqual('event', dead[bad]['kind'])
            self.assertIn('type', dead[bad]['reason'])
            self.assertEqual('bad type!', dead[bad]['f.type'])
            self.assertEqual('{not json', dead[bad2]['f.data'])
            self.assertTrue(dead[bad2]['reason'])
            self.assertEqual(1, len(rcv.requests))
            self.assertIn(b'{"y":2}', rcv.requests[0].body)
            self.assertEqual('evt_' + good.replace('-', ''), rcv.requests[0].headers['webhook-id'])
            self.assertEqual(0, u.pel_count(rs, u.EVENTS, 'fanout'))

    def test_malformed_job_dead_lettered(self):
        with h.RedisServer() as rs, h.Receiver() as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            rs.call('XGROUP', 'CREATE', u.JOBS, 'deliver', '0', 'MKSTREAM')
            bad = rs.call('XADD', u.JOBS, '*', 'event', 'nope', 'endpoint', ep, 'attempt', '1')
            with h.Worker(rs, env=u.env()) as w:
                self.assertEventually(lambda: len(u.entries(rs, u.DEAD)) == 1)
                self.assertEventually(lambda: u.pel_count(rs, u.JOBS, 'deliver') == 0)
                self.assertEqual(0, w.stop())
            (_, f), = u.entries(rs, u.DEAD)
            self.assertEqual(('job', bad, 'nope'), (f['kind'], f['source'], f['f.event']))
            self.assertIn('event', f['reason'])

    def test_rotation_sends_both_signatures(self):
        with h.RedisServer() as rs, h.Receiver() as rcv:
            ep, old = u.add_endpoint(rs, rcv.url('/a'))
            r = h.hookq(rs, '--json', 'endpoint', 'rotate-secret', ep)
            self.assertEqual(0, r.returncode, r.stderr)
            new = __import__('json').loads(r.stdout)['secret']
            self.assertNotEqual(old, new)
            with h.Worker(rs, env=u.env()) as w:
                u.send(rs, 'x', '{}')
                self.assertTrue(rcv.wait_for(1, 10), w.log())
                w.stop()
            req = rcv.requests[0]
            self.assertEqual(2, len(req.headers['webhook-signature'].split()))
            self.assertTrue(h.sw_verify(new, req.headers, req.body))
            self.assertTrue(h.sw_verify(old, req.headers, req.body))


class WorkerArgs(h.TestCase):
    """A bad argument or config names the problem and exits non-zero before touching Redis."""

    def run_worker(self, *args, env=None):
        import subprocess
        return subprocess.run([os.path.join(h.BIN, 'hookq-worker')] + list(args),
                              capture_output=True, text=True, timeout=30 * h.SLOW,
                              env=h._env(None, env))

    def test_bad_arguments_print_usage_and_exit_2(self):
        for args, words in ((['--bogus'], "unknown argument '--bogus'"),
                            (['-c'], "missing FILE after '-c'")):
            r = self.run_worker(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(words, r.stderr)
            self.assertIn('usage: hookq-worker', r.stderr)

    def test_bad_env_config_names_the_variable(self):
        r = self.run_worker(env={'HOOKQ_DELIVERY_TIMEOUT': '3x'})
        self.assertEqual(r.returncode, 2)  # config errors are usage errors (docs/worker.md)
        self.assertIn('HOOKQ_DELIVERY_TIMEOUT', r.stderr)
        self.assertIn("bad duration '3x'", r.stderr)


if __name__ == '__main__':
    h.main()
