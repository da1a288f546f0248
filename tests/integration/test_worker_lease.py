"""Lease ownership: a job pending for a worker is that worker's until it settles it.

(a) A worker must not reclaim its own jobs. XAUTOCLAIM with itself as the claimant hands a
    worker the jobs it still holds in its local queue (or in flight) once they are idle
    longer than delivery.visibility_timeout, and it delivers them a second time; nothing
    renews the lease of a job waiting locally for a transfer slot.
(b) After Redis freezes and the worker reconnects, jobs Redis handed to it in a reply it
    never got (the read timed out) are its own pending entries: it must take them up at
    once, not wait delivery.visibility_timeout for reclaim.
(c) A stale worker's late result must not settle a job another worker has reclaimed:
    settle.lua checks XPENDING for the job under any consumer, so the late result
    schedules a retry (or writes a dead letter) for a job the new owner delivers.
"""
import collections
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import freeze_proxy as fp  # noqa: E402
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402


def ids_of(rcv):
    with rcv.lock:
        return [r.headers.get('webhook-id') for r in rcv.requests]


def dups(rcv):
    return {k: v for k, v in collections.Counter(ids_of(rcv)).items() if v > 1}


def pending(rs):
    return rs.call('XPENDING', u.JOBS, 'deliver', '-', '+', 1000)


def stable(rcv, quiet):
    """Wait until the receiver got nothing new for `quiet` seconds (at most 30 s)."""
    last = [len(rcv.requests), time.monotonic()]

    def still():
        n = len(rcv.requests)
        if n != last[0]:
            last[:] = [n, time.monotonic()]
        return time.monotonic() - last[1] >= quiet
    h.wait_until(still, 30, 0.1)


class WorkerLease(h.TestCase):

    def test_own_jobs_waiting_for_a_slot_are_not_reclaimed_by_their_worker(self):
        # 30 jobs for one endpoint, 4 at a time, 1.5 s each: jobs wait locally for up to
        # ~10 s, far longer than the 3 s visibility timeout. Only one worker runs, so every
        # duplicate is the worker reclaiming from itself.
        n = 30

        def handler(req, nth):
            time.sleep(1.5)
            return None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            e = u.env(delivery_visibility_timeout='%ds' % (3 * h.SLOW),
                      delivery_timeout='%dms' % (2500 * h.SLOW),
                      delivery_per_endpoint=4, delivery_concurrency=16,
                      retry_schedule='1h', retry_jitter=0)
            want = {'lease_%d' % i for i in range(n)}
            with h.Worker(rs, env=e, name='only') as w:
                for i in range(n):
                    u.xadd_event(rs, 't', '{"i":%d}' % i, id='lease_%d' % i)
                self.assertEventually(lambda: want <= set(ids_of(rcv)) or dups(rcv), 60,
                                      'not all %d delivered: %d' % (n, len(set(ids_of(rcv)))))
                self.assertEventually(lambda: u.pel_count(rs, u.JOBS, 'deliver') == 0, 30,
                                      'jobs still pending: %r' % (pending(rs),))
                stable(rcv, 2.0)  # duplicates still queued locally would arrive now
                log = w.log()
                self.assertEqual(0, w.stop())
            d = dups(rcv)
            claims = [ln for ln in log.splitlines() if 'reclaim: claimed' in ln]
            self.assertFalse(d, '%d of %d events delivered more than once (up to %d times) by '
                             'the only worker, %d requests in all: it reclaimed its own jobs '
                             '(%d reclaim lines, first: %s)'
                             % (len(d), n, max(d.values()) if d else 0, len(rcv.requests),
                                len(claims), claims[:1]))
            self.assertEqual(n, len(rcv.requests))
            self.assertEqual(want, set(ids_of(rcv)))
            logs = u.log_entries(rs, ep)
            self.assertEqual(n, len(logs))
            self.assertEqual({'delivered'}, {f['outcome'] for _, f in logs})
            self.assertEqual(0, u.pel_count(rs, u.JOBS, 'deliver'))

    def test_after_a_redis_freeze_the_worker_takes_up_its_own_pending_jobs_at_once(self):
        # The visibility timeout is 60 s; Redis is frozen for 6 s while a jobs read of the
        # worker is on its way (freeze_proxy: SIGSTOP redis-server, then pass the read on),
        # so Redis assigns jobs to the worker in a reply the worker never sees. Correct:
        # they are delivered soon after Redis is back, not 60 s later through reclaim.
        n = 50

        def handler(req, nth):
            time.sleep(0.5)
            return None
        with h.RedisServer() as rs, h.Receiver(handler) as rcv, fp.FreezeProxy(rs) as px:
            u.add_endpoint(rs, rcv.url('/a'))
            e = u.env(delivery_visibility_timeout='60s', delivery_timeout='10s',
                      redis_command_timeout='1s', delivery_concurrency=4,
                      delivery_per_endpoint=4, retry_schedule='1h', retry_jitter=0)
            want = {'frz_%d' % i for i in range(n)}
            with h.Worker(rs, env=fp.worker_env_url(e, px), name='frozen') as w:
                for i in range(n):
                    u.xadd_event(rs, 't', '{"i":%d}' % i, id='frz_%d' % i)
                self.assertTrue(rcv.wait_for(8, 30), w.log()[-3000:])
                px.arm()
                self.assertTrue(px.fired.wait(10), 'the worker sent no jobs read: ' + w.log()[-2000:])
                time.sleep(6)
                t_cont = px.cont()
                self.assertEventually(lambda: 'connection lost' in w.log(), 5,
                                      'the freeze did not time out a command: ' + w.log()[-2000:])
                done = h.wait_until(lambda: want <= set(ids_of(rcv)), 15)
                took = time.monotonic() - t_cont
                missing = sorted(want - set(ids_of(rcv)))
                self.assertTrue(done, 'after the freeze, %d of %d events not delivered within '
                                '%.0f s (visibility timeout 60 s): %s; pending: %r'
                                % (len(missing), n, took, missing, pending(rs)))
                self.assertEventually(lambda: u.pel_count(rs, u.JOBS, 'deliver') == 0, 10,
                                      'jobs still pending: %r' % (pending(rs),))
                stable(rcv, 1.0)
                self.assertEqual(0, w.stop())
            self.assertEqual({}, dups(rcv))
            self.assertEqual(want, set(ids_of(rcv)))


    def _late_result_of_a_stale_worker(self, last_attempt):
        """Worker `stale` has the job in flight and is SIGSTOPped past the visibility
        timeout; worker `owner` reclaims it and sends it; `stale` is continued while the
        owner's request is still open, so its late failure (a 500, or its own delivery
        timeout) is written while the job is pending for `owner`. Then the owner's request
        succeeds. With last_attempt, the stale attempt is the job's last one (the first
        attempt failed at once), so its late result would be a dead letter rather than a
        retry."""
        a_held, b_arrived = threading.Event(), threading.Event()
        release_a, release_b = threading.Event(), threading.Event()
        phase = {'n': 0}
        lock = threading.Lock()

        def handler(req, nth):
            with lock:
                k = phase['n']
                phase['n'] += 1
            if last_attempt and k == 0:
                return (500, {}, b'first attempt fails at once')
            if k == (1 if last_attempt else 0):   # the stale worker's attempt
                a_held.set()
                release_a.wait(60)
                return (500, {}, b'too late anyway')
            if k == (2 if last_attempt else 1):   # the owner's attempt
                b_arrived.set()
                release_b.wait(4 * h.SLOW)
                return None
            return None  # a further delivery: counted below
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/a'))
            e = u.env(delivery_timeout='%ds' % (5 * h.SLOW),
                      delivery_visibility_timeout='%ds' % (6 * h.SLOW),
                      retry_schedule='2s', retry_jitter=0)
            stale = h.Worker(rs, env=e, name='stale').start()
            owner = h.Worker(rs, env=e, name='owner')
            try:
                u.xadd_event(rs, 't', '{"late":1}', id='late_1')
                self.assertTrue(a_held.wait(15), stale.log()[-3000:])
                stale.proc.send_signal(signal.SIGSTOP)
                release_a.set()  # its answer waits in the stopped worker's socket
                owner.start()
                self.assertTrue(b_arrived.wait(30), 'owner did not reclaim the job: ' +
                                owner.log()[-3000:])
                claimed = pending(rs)
                self.assertEqual([['owner']], [[p[1]] for p in claimed], claimed)
                def settled():
                    log = stale.log()
                    return log.count('-> retry') + log.count('-> dead')
                n0 = settled()
                stale.proc.send_signal(signal.SIGCONT)
                # the stale worker classifies its late result and writes it within one loop
                h.wait_until(lambda: settled() > n0, 3)
                time.sleep(0.5)
                delay_before, dead_before = rs.call('ZCARD', u.DELAY), rs.call('XLEN', u.DEAD)
                release_b.set()
                self.assertEventually(lambda: u.pel_count(rs, u.JOBS, 'deliver') == 0, 10,
                                      'job left pending: %r' % (pending(rs),))
                # a retry scheduled by the stale result would be due 2 s later: give it 4 s
                time.sleep(4)
                n_req = len(rcv.requests)
                delay, dead = rs.call('ZCARD', u.DELAY), rs.call('XLEN', u.DEAD)
                self.assertEqual(0, stale.stop())
                self.assertEqual(0, owner.stop())
            finally:
                for w in (stale, owner):
                    if w.proc is not None:
                        try:
                            w.proc.send_signal(signal.SIGCONT)
                        except OSError:
                            pass
                    w.__exit__(None, None, None)
            expect = 3 if last_attempt else 2
            self.assertEqual((0, 0), (delay_before, dead_before),
                             "the stale worker's late result settled a job pending for "
                             'another worker: delay zset %d, dead letters %d'
                             % (delay_before, dead_before))
            self.assertEqual((0, 0), (delay, dead), 'delay zset %d, dead letters %d'
                             % (delay, dead))
            self.assertEqual(expect, n_req, 'event sent %d times, want %d (the owner delivered '
                             'it)' % (n_req, expect))
            self.assertEqual(['delivered'], [f['outcome'] for _, f in u.log_entries(rs, ep)
                                             if f['worker'] == 'owner'])

    def test_late_failure_of_a_stale_worker_schedules_no_retry(self):
        self._late_result_of_a_stale_worker(last_attempt=False)

    def test_late_failure_of_a_stale_worker_on_the_last_attempt_writes_no_dead_letter(self):
        self._late_result_of_a_stale_worker(last_attempt=True)


if __name__ == '__main__':
    h.main()
