"""Near maxmemory the worker says "redis: full" once, not at every refused/accepted flip.

A Redis hovering around maxmemory (noeviction) refuses one write and accepts the next:
the delivery log lines push it over, a trim or an acknowledged job frees some room. The
worker logs "redis: full (...)" when a write is refused and "redis: writes accepted
again" when one is accepted, so in production it wrote the pair 94 times in 40 s. With
hysteresis a flapping state is one transition: "full" once, and "accepted again" only
after writes have been accepted for a while.

Memory hovering at the limit by itself flips at random moments and may not flip at all on
a quiet machine, so the test makes the flipping happen: while deliveries flow, maxmemory
is switched every 0.5 s between 1 MiB below used_memory (every log line refused) and
256 MiB (every write accepted). From the worker's side that is exactly a Redis at the
edge: a refused write, an accepted one, a refused one, ...
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402

FLAP_S = 15
HALF_PERIOD_S = 0.5


def fanned_out(rs):
    for g in rs.call('XINFO', 'GROUPS', u.EVENTS):
        g = dict(zip(g[::2], g[1::2]))
        if g['name'] == 'fanout':
            return (g['entries-read'] or 0) - g['pending']
    return 0


class WorkerLogNoise(h.TestCase):

    def test_flapping_memory_limit_is_logged_as_one_transition(self):
        n = 400  # 2 in flight x 0.1 s each: deliveries for ~20 s, longer than the flapping

        def handler(req, nth):
            time.sleep(0.1)
            return None
        args = ['--maxmemory', '256mb', '--maxmemory-policy', 'noeviction']
        with h.RedisServer(args=args) as rs, h.Receiver(handler) as rcv:
            u.add_endpoint(rs, rcv.url('/a'))
            e = u.env(delivery_concurrency=2, delivery_per_endpoint=2, log_level='info')
            with h.Worker(rs, env=e) as w:
                rs.pipeline([('XADD', u.EVENTS, '*', 'type', 't', 'data', str(i))
                             for i in range(n)])
                # every job exists before the first refusal (fanout is refused when full)
                self.assertEventually(lambda: fanned_out(rs) == n, 30,
                                      'fanned out %d of %d' % (fanned_out(rs), n))
                r = h.Resp(rs.port)
                blob = 'x' * 65536
                for i in range(32):
                    r.call('SET', 'junk:%d' % i, blob)

                phases = {'full': 0, 'room': 0}
                stop = threading.Event()

                def flap():
                    c = h.Resp(rs.port)
                    try:
                        while not stop.is_set():
                            info = c.call('INFO', 'memory')
                            used = int(re.search(r'used_memory:(\d+)', info).group(1))
                            c.call('CONFIG', 'SET', 'maxmemory', used - 1024 * 1024)
                            phases['full'] += 1
                            if stop.wait(HALF_PERIOD_S):
                                break
                            c.call('CONFIG', 'SET', 'maxmemory', '256mb')
                            phases['room'] += 1
                            stop.wait(HALF_PERIOD_S)
                    finally:
                        c.call('CONFIG', 'SET', 'maxmemory', '256mb')
                        c.close()
                t = threading.Thread(target=flap, daemon=True)
                before = len(rcv.requests)
                t.start()
                try:
                    time.sleep(FLAP_S)
                finally:
                    stop.set()
                    t.join(10)
                during = len(rcv.requests) - before
                r.close()
                time.sleep(1)
                self.assertTrue(w.alive(), w.log()[-3000:])
                log = w.log()
                self.assertEqual(0, w.stop())
            n_full = len(re.findall(r'redis: full', log))
            n_again = len(re.findall(r'redis: writes accepted again', log))
            # the flapping really reached the worker: deliveries went on through it, and
            # Redis refused it at least once
            self.assertGreaterEqual(during, 4 * FLAP_S, 'deliveries did not flow')
            self.assertGreaterEqual(phases['full'], FLAP_S // 2)
            self.assertGreaterEqual(n_full, 1, log[-3000:])
            self.assertLessEqual(
                n_full, 3, '"redis: full" logged %d times ("writes accepted again" %d times) '
                'in %d s of a Redis at its memory limit (%d full / %d room phases, %d '
                'deliveries)' % (n_full, n_again, FLAP_S, phases['full'], phases['room'], during))
            self.assertLessEqual(n_again, 3, '"writes accepted again" logged %d times' % n_again)


if __name__ == '__main__':
    h.main()
