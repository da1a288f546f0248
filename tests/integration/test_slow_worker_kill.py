"""kill -9 one of 3 workers every 2 s for 20 s during 20,000 deliveries:
nothing lost, duplicates bounded by what was in flight, PEL empty at the end."""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


class WorkerKill(h.TestCase):

    def test_kill9_during_20000(self):
        n = 20000
        with h.RedisServer(appendonly=False) as rs, h.Receiver() as rcv:
            u.add_endpoint(rs, rcv.url('/a'))
            e = u.env(delivery_timeout='2s', delivery_visibility_timeout='3s',
                      delivery_concurrency=32, delivery_per_endpoint=32,
                      log_level='info')
            ws = [h.Worker(rs, env=e, name='k%d' % i).start() for i in range(3)]
            kills = 0
            try:
                for k in range(0, n, 500):
                    rs.pipeline([['XADD', u.EVENTS, '*', 'id', 'e%d' % i, 'type', 'x',
                                  'data', str(i)] for i in range(k, k + 500)])
                t_end = time.monotonic() + 20
                while time.monotonic() < t_end:
                    time.sleep(2)
                    i = random.randrange(3)
                    ws[i].kill()
                    kills += 1
                    ws[i] = h.Worker(rs, env=e, name='k%d' % i).start()
                want = {'e%d' % i for i in range(n)}

                def all_in():
                    with rcv.lock:
                        got = {r.headers['webhook-id'] for r in rcv.requests}
                    return want <= got
                self.assertEventually(all_in, 240)
                self.assertEventually(lambda: u.pel_count(rs, u.JOBS, 'deliver') == 0, 30)
                self.assertEventually(lambda: u.pel_count(rs, u.EVENTS, 'fanout') == 0, 30)
            finally:
                for w in ws:
                    w.stop()
            self.assertEqual(0, rs.call('XLEN', u.JOBS))
            self.assertEqual(0, rs.call('ZCARD', u.DELAY))
            self.assertEqual(0, rs.call('XLEN', u.DEAD))
            dups = len(rcv.requests) - n
            # each kill can repeat at most the jobs that worker held (2 x concurrency)
            self.assertLessEqual(dups, kills * 64)
            self.assertGreaterEqual(kills, 9)


if __name__ == '__main__':
    h.main()
