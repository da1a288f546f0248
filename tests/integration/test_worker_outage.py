"""SIGTERM hand-over and Redis outages."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


class WorkerOutage(h.TestCase):

    def test_sigterm_exits_0_and_second_worker_finishes(self):
        def handler(req, nth):
            time.sleep(0.5)
            return None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            u.add_endpoint(rs, rcv.url('/a'))
            e = u.env(delivery_timeout='3s', delivery_visibility_timeout='4s',
                      delivery_concurrency=4, delivery_per_endpoint=4,
                      delivery_shutdown_grace='2s')
            n = 40
            ids = {u.xadd_event(rs, 't', '{"i":%d}' % i, id='e%d' % i) and 'e%d' % i
                   for i in range(n)}
            w1 = h.Worker(rs, env=e, name='first').start()
            self.assertTrue(rcv.wait_for(4, 10), w1.log())
            t0 = time.monotonic()
            self.assertEqual(0, w1.stop(signal.SIGTERM, timeout=10))
            took = time.monotonic() - t0
            self.assertLess(took, 2 + 2)  # within the grace period (+ process exit)
            before = len(rcv.requests)
            self.assertLess(before, n)  # it really stopped reading
            with h.Worker(rs, env=e, name='second') as w2:
                self.assertEventually(
                    lambda: ids <= set(r.headers['webhook-id'] for r in rcv.requests), 30)
                self.assertEventually(lambda: u.pel_count(rs, u.JOBS, 'deliver') == 0, 10)
                self.assertEqual(0, w2.stop())
            self.assertIn('shutdown', w1.log())

    def _outage(self, appendonly):
        with h.RedisServer(appendonly=appendonly) as rs, h.Receiver() as rcv:
            u.add_endpoint(rs, rcv.url('/a'))
            with h.Worker(rs, env=u.env()) as w:
                u.send(rs, 'before', '1')
                self.assertTrue(rcv.wait_for(1, 10))
                if appendonly:
                    time.sleep(1.2)  # appendfsync everysec
                    rs.restart()
                else:
                    rs.kill()
                    time.sleep(1.0)  # the worker notices and backs off
                    self.assertTrue(w.alive())
                    rs.start()
                    # empty Redis: the endpoint must come back to be delivered to
                    u.add_endpoint(rs, rcv.url('/b'))
                self.assertTrue(w.alive())
                u.xadd_event(rs, 'after', '2') if not appendonly else u.send(rs, 'after', '2')
                path = '/a' if appendonly else '/b'
                self.assertTrue(rcv.wait_for(1, 20, path=path if not appendonly else None)
                                and h.wait_until(lambda: any(
                                    b'"after"' in r.body for r in rcv.for_path(path)), 20),
                                w.log())
                self.assertEqual(0, w.stop())
                log = w.log()
            self.assertIn('connection lost', log)
            self.assertEqual(1, log.count('connection lost'))  # once per state change
            if not appendonly:  # the groups were re-created on the empty Redis
                self.assertEqual(2, log.count('created consumer group fanout'))

    def test_redis_restart_with_aof(self):
        self._outage(True)

    def test_redis_restart_without_persistence_recreates_groups(self):
        self._outage(False)


if __name__ == '__main__':
    h.main()
