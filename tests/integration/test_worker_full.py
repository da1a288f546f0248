"""Failed attempts while Redis is full (maxmemory, noeviction): nothing is lost.

A failed attempt is rescheduled (ZADD delay) or dead-lettered (XADD dead) and then
acknowledged. Redis at maxmemory refuses ZADD/XADD but accepts XACK/XDEL, so as separate
commands the job was acknowledged without being rescheduled: lost. settle.lua does both
atomically (docs/worker.md, Results). Here every attempt happens while Redis is full: odd
events fail once then succeed, even ones fail until they are dead-lettered.
"""
import re
import threading

import harness as h
from test_security_ssrf import add_endpoint

P = 'hookq'
EVENTS = P + ':{q}:events'
JOBS = P + ':{q}:jobs'
N = 40


class WorkerFullTest(h.TestCase):

    def test_failed_attempts_are_rescheduled_or_dead_lettered_while_redis_is_full(self):
        gate = threading.Event()
        ok = set()
        lock = threading.Lock()

        def handler(req, nth):
            gate.wait(60)  # no attempt finishes before Redis is full
            i = int(req.headers['webhook-id'].split('_')[1])
            if i % 2 == 1 and req.headers.get('x-hookq-attempt') != '1':
                with lock:
                    ok.add(i)
                return None
            return (500, {}, b'failing on purpose')

        args = ['--maxmemory', '256mb', '--maxmemory-policy', 'noeviction']
        env = {'HOOKQ_LOG_LEVEL': 'info', 'HOOKQ_RETRY_SCHEDULE': '1s', 'HOOKQ_RETRY_JITTER': '0',
               'HOOKQ_BREAKER_ENABLED': 'false'}  # 20 failures in a row would open it: not this test's subject
        with h.RedisServer(args=args) as rs, h.Receiver(handler) as rcv:
            add_endpoint(rs, rcv.url('/hook'))
            with h.Worker(rs, env=env) as w:
                r = h.Resp(rs.port)
                for i in range(N):
                    r.call('XADD', EVENTS, '*', 'id', 'full_%d' % i, 'type', 'fault.full',
                           'data', '{"i":%d}' % i)
                # every job exists (fanned out) before Redis fills up
                self.assertEventually(lambda: rs.call('XLEN', JOBS) == N or not w.alive(), 30)
                self.assertTrue(w.alive(), w.log()[-3000:])

                # full: maxmemory 1 MiB below what is in use (see test_slow_faults (c))
                blob = 'x' * 65536
                for i in range(64):
                    r.call('SET', 'junk:%d' % i, blob)
                used = int(re.search(r'used_memory:(\d+)', r.call('INFO', 'memory')).group(1))
                r.call('CONFIG', 'SET', 'maxmemory', used - 1024 * 1024)
                with self.assertRaisesRegex(h.RedisError, 'OOM'):
                    r.call('SET', 'probe', '1')
                gate.set()

                dead = lambda: {f.get('event_id') for _, f in h.xrange_dicts(rs, P + ':{q}:dead')
                                if f.get('kind') == 'job'}
                want_ok = {i for i in range(N) if i % 2 == 1}
                want_dead = {'full_%d' % i for i in range(N) if i % 2 == 0}
                self.assertEventually(
                    lambda: (ok >= want_ok and dead() >= want_dead) or not w.alive(), 60,
                    'failed attempts lost while Redis was full: delivered on retry %d of %d, '
                    'dead-lettered %d of %d' % (len(ok), len(want_ok), len(dead()),
                                                len(want_dead)))
                self.assertTrue(w.alive(), w.log()[-3000:])
                self.assertEqual(dead(), want_dead)
                self.assertEventually(lambda: rs.call('XPENDING', JOBS, 'deliver')[0] == 0, 10,
                                      'jobs left pending')
                self.assertEqual(rs.call('ZCARD', P + ':{q}:delay'), 0)

                # Redis was full all along, and the worker said so once, not per refused write
                with self.assertRaisesRegex(h.RedisError, 'OOM'):
                    r.call('SET', 'probe', '1')
                r.close()
                log = w.log()
                self.assertGreaterEqual(len(rcv.requests), N + N)
                n_full = len(re.findall(r'redis: full', log))
                self.assertGreaterEqual(n_full, 1, log[-3000:])
                self.assertLessEqual(n_full, 2, log[-3000:])


if __name__ == '__main__':
    h.main()
