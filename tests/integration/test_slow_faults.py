"""Redis faults under load. Label "slow": this file takes a few minutes.

(a) redis-server with AOF everysec killed with SIGKILL and restarted during a run of
    3,000 deliveries: no acknowledged event lost, the worker delivering new events again
    within 5 s of Redis coming back.
(b) Redis unreachable for 30 s: both workers stay up, reconnect and resume.
(c) Redis full (maxmemory, noeviction): `hookq send` fails with a clear error and writes
    nothing (no idempotency mark without its event); the worker keeps delivering the jobs
    already queued.
"""
import os
import re
import signal
import threading
import time

import harness as h
from test_security_ssrf import add_endpoint

P = 'hookq'
EVENTS = P + ':{q}:events'
JOBS = P + ':{q}:jobs'

# Short timeouts so reclaim and reconnect happen inside the test's bounds: a job whose
# worker lost it when Redis died is reclaimed after the visibility timeout.
FAST = {'HOOKQ_DELIVERY_TIMEOUT': '2s', 'HOOKQ_DELIVERY_VISIBILITY_TIMEOUT': '5s',
        'HOOKQ_RETRY_SCHEDULE': '1s 1s 1s 1s 1s', 'HOOKQ_RETRY_JITTER': '0',
        'HOOKQ_LOG_LEVEL': 'info'}


class Publisher(threading.Thread):
    """Publishes events e_0..e_{n-1} with XADD over its own connection, retrying through
    outages. acked[i] = monotonic time XADD i returned an entry id."""

    def __init__(self, port, n, pause=0.004):
        super().__init__(daemon=True)
        self.port = port
        self.n = n
        self.pause = pause
        self.acked = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self):
        r = h.Resp(self.port, timeout=2)
        i = 0
        give_up = time.monotonic() + 120
        while i < self.n and not self.stop.is_set() and time.monotonic() < give_up:
            try:
                sid = r.call('XADD', EVENTS, '*', 'id', 'e_%d' % i, 'type', 'fault.load',
                             'data', '{"i":%d}' % i)
            except (OSError, ConnectionError, h.RedisError):
                # Unknown outcome (the entry may or may not exist): not acknowledged.
                r.close()
                time.sleep(0.05)
                continue
            with self.lock:
                self.acked['e_%d' % i] = (time.monotonic(), sid)
            i += 1
            time.sleep(self.pause)
        r.close()

    def snapshot(self):
        with self.lock:
            return dict(self.acked)


def delivered_ids(rcv, path='/hook'):
    return {r.headers.get('webhook-id') for r in rcv.for_path(path)}


def stream_ids(rs):
    """Event ids ("id" field) present in the events stream."""
    out = set()
    for _, f in h.xrange_dicts(rs, EVENTS):
        out.add(f.get('id'))
    return out


class SlowFaultsTest(h.TestCase):

    def test_a_redis_sigkill_with_aof_everysec_loses_no_acknowledged_event(self):
        n = 3000
        with h.RedisServer(appendonly=True) as rs, h.Receiver() as rcv:
            add_endpoint(rs, rcv.url('/hook'))
            env = dict(FAST, HOOKQ_REDIS_RECONNECT_MAX='1s')
            with h.Worker(rs, env=env) as w:
                pub = Publisher(rs.port, n)
                pub.start()
                self.assertEventually(lambda: len(pub.snapshot()) >= 1000, 60)
                self.assertEventually(lambda: len(rcv.requests) >= 200, 30,
                                      'worker not delivering before the kill')
                t_kill = time.monotonic()
                rs.kill()
                time.sleep(1)
                rs.start()  # same port, same dir: loads the AOF
                t_up = time.monotonic()
                pub.join(150)
                self.assertFalse(pub.is_alive(), 'publisher did not finish')
                acked = pub.snapshot()
                self.assertEqual(len(acked), n)

                # Which events must be delivered. appendfsync everysec: Redis write()s the
                # AOF buffer to the kernel before it replies to clients, except while a
                # background fsync is slow, when it may postpone that write for up to 2 s
                # (then writes anyway). SIGKILL ends the process, not the kernel: written
                # data stays in the page cache and reaches the file. So every XADD
                # acknowledged more than 2 s before the kill is in the AOF (we allow 3 s).
                # Events acknowledged in the last 3 s before the kill may have been lost by
                # Redis itself; for those the restarted stream is the judge: whichever
                # survived must be delivered. Events acknowledged after the restart must all
                # be delivered.
                durable = {e for e, (t, _) in acked.items() if t <= t_kill - 3.0 or t >= t_up}
                survived = stream_ids(rs)
                required = durable | (survived & set(acked))
                self.assertEventually(lambda: required <= delivered_ids(rcv) or not w.alive(),
                                      120, 'events not delivered after the restart')
                missing = required - delivered_ids(rcv)
                self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])
                self.assertEqual(missing, set(),
                                 '%d acknowledged events lost (e.g. %s); %d acknowledged in '
                                 'the last 3 s before the kill were not required' % (
                                     len(missing), sorted(missing)[:10],
                                     len(set(acked) - durable)))
                self.assertTrue(durable - {e for e, (t, _) in acked.items() if t >= t_up},
                                'no event acknowledged before the kill window: the test '
                                'proved nothing')

                # Back within 5 s: the first delivery of an event published after Redis
                # came back (so the worker must have reconnected, fanned out and read the
                # job) arrives within 5 s of the restart (reconnect_max is 1 s here).
                after = {e for e, (t, _) in acked.items() if t >= t_up}
                firsts = [r.t for r in rcv.for_path('/hook') if r.headers.get('webhook-id') in after]
                self.assertTrue(firsts)
                self.assertLessEqual(min(firsts) - t_up, 5.0,
                                     'first post-restart delivery %.1f s after Redis was back'
                                     % (min(firsts) - t_up))

    def test_b_redis_unreachable_for_30s_workers_survive_and_resume(self):
        with h.RedisServer(appendonly=True) as rs, h.Receiver() as rcv:
            add_endpoint(rs, rcv.url('/hook'))
            workers = [h.Worker(rs, env=FAST, name='outage-w%d' % i) for i in (1, 2)]
            for w in workers:
                w.start()
            try:
                r = h.Resp(rs.port)
                for i in range(100):
                    r.call('XADD', EVENTS, '*', 'id', 'before_%d' % i, 'type', 'fault.outage',
                           'data', '{}')
                r.close()
                self.assertTrue(rcv.wait_for(100, 30), 'not delivering before the outage')

                rs.stop()  # clean shutdown: the AOF keeps everything
                down_until = time.monotonic() + 30
                while time.monotonic() < down_until:
                    for w in workers:
                        self.assertTrue(w.alive(), 'worker exited while Redis was down:\n'
                                        + w.log()[-3000:])
                    time.sleep(1)
                rs.start()

                r = h.Resp(rs.port)
                for i in range(100):
                    r.call('XADD', EVENTS, '*', 'id', 'after_%d' % i, 'type', 'fault.outage',
                           'data', '{}')
                r.close()
                want = {'before_%d' % i for i in range(100)} | {'after_%d' % i for i in range(100)}
                self.assertEventually(lambda: want <= delivered_ids(rcv), 60,
                                      'not every event delivered after the outage')
                for w in workers:
                    self.assertTrue(w.alive(), w.log()[-3000:])

                # Both workers came back, not just one: freeze one (SIGSTOP) and the other
                # alone must deliver a new batch (reclaiming, after the visibility timeout,
                # whatever the frozen one had already read), then the other way round.
                for solo, frozen in ((0, 1), (1, 0)):
                    os.kill(workers[frozen].proc.pid, signal.SIGSTOP)
                    try:
                        r = h.Resp(rs.port)
                        batch = {'solo%d_%d' % (solo, i) for i in range(20)}
                        for e in sorted(batch):
                            r.call('XADD', EVENTS, '*', 'id', e, 'type', 'fault.outage',
                                   'data', '{}')
                        r.close()
                        self.assertEventually(lambda: batch <= delivered_ids(rcv), 30,
                                              'worker %d alone did not deliver after the '
                                              'outage:\n%s' % (solo + 1,
                                                                workers[solo].log()[-3000:]))
                    finally:
                        os.kill(workers[frozen].proc.pid, signal.SIGCONT)
                self.assertEventually(
                    lambda: rs.call('XPENDING', EVENTS, 'fanout')[0] == 0
                    and rs.call('XPENDING', JOBS, 'deliver')[0] == 0, 30, 'entries left pending')
                for w in workers:
                    self.assertEqual(w.stop(), 0, w.log()[-3000:])
            finally:
                for w in workers:
                    w.__exit__(None, None, None)

    def test_c_redis_full_send_fails_cleanly_and_worker_keeps_draining(self):
        gate = threading.Event()

        def held(req, nth):
            gate.wait(60)
            return None

        args = ['--maxmemory', '256mb', '--maxmemory-policy', 'noeviction']
        with h.RedisServer(args=args) as rs, h.Receiver(held) as rcv:
            add_endpoint(rs, rcv.url('/hook'))
            with h.Worker(rs, env={'HOOKQ_LOG_LEVEL': 'info'}) as w:
                r = h.Resp(rs.port)
                for i in range(200):
                    r.call('XADD', EVENTS, '*', 'id', 'full_%d' % i, 'type', 'fault.full',
                           'data', '{"i":%d}' % i)
                last = rs.call('XREVRANGE', EVENTS, '+', '-', 'COUNT', 1)[0][0]

                # Fanned out: the fanout group has read every event and has none pending, so
                # all 200 jobs exist (in the jobs stream or, deferred while the receiver
                # holds the first ones, the delay zset).
                def fanned_out():
                    for g in rs.call('XINFO', 'GROUPS', EVENTS):
                        d = dict(zip(g[0::2], g[1::2]))
                        if d['name'] == 'fanout':
                            return d['last-delivered-id'] == last and d['pending'] == 0
                    return False
                self.assertEventually(lambda: fanned_out() or not w.alive(), 30,
                                      'fanout did not finish')
                self.assertTrue(w.alive(), w.log()[-3000:])

                # Fill Redis up: some junk, then maxmemory set 1 MiB below what is in use,
                # so Redis stays over the limit whatever small amounts get freed meanwhile
                # (filling until one big SET fails is not enough: the rejected command's own
                # query buffer is what tipped it over, and it is freed right after).
                blob = 'x' * 65536
                for i in range(64):
                    r.call('SET', 'junk:%d' % i, blob)
                info = r.call('INFO', 'memory')
                used = int(re.search(r'used_memory:(\d+)', info).group(1))
                r.call('CONFIG', 'SET', 'maxmemory', used - 1024 * 1024)
                with self.assertRaisesRegex(h.RedisError, 'OOM'):
                    r.call('SET', 'probe', '1')

                res = h.hookq(rs, 'send', 'fault.full', '{"x":1}')
                self.assertNotEqual(res.returncode, 0, res)
                self.assertRegex(res.stderr, re.compile(r'memory|OOM', re.I))

                res = h.hookq(rs, 'send', 'fault.full', '{"x":2}', '--id', 'full_idem')
                self.assertNotEqual(res.returncode, 0, res)
                self.assertRegex(res.stderr, re.compile(r'memory|OOM', re.I))
                self.assertIsNone(rs.call('GET', P + ':{q}:idem:full_idem'),
                                  'idempotency mark written without its event')
                self.assertNotIn('full_idem', stream_ids(rs))

                # The queued jobs still go out while Redis is full.
                gate.set()
                want = {'full_%d' % i for i in range(200)}
                self.assertEventually(lambda: want <= delivered_ids(rcv) or not w.alive(), 90,
                                      'worker stopped draining while Redis was full')
                self.assertTrue(w.alive(), 'worker died:\n' + w.log()[-3000:])

                # Room again: the same --id publishes now (no stale mark) and is delivered.
                r.call('CONFIG', 'SET', 'maxmemory', '256mb')
                r.close()
                res = h.hookq(rs, 'send', 'fault.full', '{"x":3}', '--id', 'full_idem')
                self.assertEqual(res.returncode, 0, res)
                self.assertEventually(lambda: 'full_idem' in delivered_ids(rcv), 30)
                self.assertTrue(w.alive())


if __name__ == '__main__':
    h.main()
