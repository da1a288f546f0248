"""Fleet-wide limits (docs/policies.md "Fleet-wide rate and max in flight"), with 3 real
workers against one endpoint, counted at the receiver:

- rate 40/s for 10 s: 400 +-10% requests in the steady window (counted by receive time,
  the first second left out), while an endpoint without a policy beside it is delivered at
  full speed; the long variant (the *_long CTest entry, label slow): 50/s for 30 s.
- max_in_flight 4, a receiver holding each request 200 ms, each worker allowed 2 of its
  own (delivery.per_endpoint): at most 4 at once at the receiver, and at least 3 (the limit
  is used, not just respected, by more than one worker).
- a 429 with Retry-After: 2 to one request pauses the endpoint for all 3 workers: nothing
  reaches the receiver for the 2 s (bar the requests already under way), then delivery
  resumes and everything is delivered.
"""
import collections
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import policyutil as pu  # noqa: E402
import wkutil as u  # noqa: E402


def fleet(test, rs, n=3, **kw):
    e = u.env(log_level='info', endpoints_disable_after=0, **kw)
    return [pu.worker(test, rs, e, 'lim%d' % i) for i in range(n)]


def delivering_workers(rs, ep):
    """The worker names in the endpoint's delivery log."""
    return {f.get('worker') for _, f in u.log_entries(rs, ep)}


class PolicyLimits(h.TestCase):

    def _rate(self, rate, seconds, backlog):
        rec = pu.SeqRecorder()
        free = pu.SeqRecorder()

        def handler(req, nth):
            return (free if req.path == '/free' else rec)(req, nth)
        with h.RedisServer() as rs, h.Receiver(handler) as rcv:
            ep = pu.endpoint(rs, rcv.url('/lim'), 'lim', rate='%d/s' % rate)
            ep_free = pu.endpoint(rs, rcv.url('/free'), 'free')
            ws = fleet(self, rs)
            try:
                pu.wait_loaded(self, ws, 2)
                pu.publish_keyed(rs, ['a'], backlog, type_='lim')
                t_pub = time.monotonic()
                pu.publish_keyed(rs, ['f'], backlog, type_='free')
                # the window: from 1 s after the first request, `seconds` long
                h.wait_until(lambda: rec.n() > 0, 10)
                recs = rec.records()
                self.assertTrue(recs, 'the rate-limited endpoint got nothing in 10 s:\n' +
                                ws[0].log()[-2000:])
                t_first = min(r.start for r in recs)
                w0, w1 = t_first + 1.0, t_first + 1.0 + seconds
                free_done = h.wait_until(lambda: free.n() >= backlog, 2 + seconds)
                t_free = time.monotonic() - t_pub
                free_n = free.n()
                lim_at_free = rec.n()
                time.sleep(max(0.0, w1 + 0.5 - time.monotonic()))
                workers = delivering_workers(rs, ep)
                alive = [w.alive() for w in ws]
            finally:
                pu.stop_all(ws)
            got = sum(1 for r in rec.records() if w0 <= r.start < w1)
            want = rate * seconds
            sys.stderr.write('\nrate %d/s, 3 workers: %d requests in the %d s window (%.1f/s, '
                             '%.3f of the rate); the endpoint without a policy: %d in %.2f s '
                             '(%.0f/s); limited one had %d by then; delivering workers %s\n'
                             % (rate, got, seconds, got / seconds, got / want, free_n, t_free,
                                free_n / max(t_free, 1e-3), lim_at_free, sorted(workers)))
            self.assertEqual(alive, [True] * 3, 'a worker exited')
            problems = []
            if not 0.9 * want <= got <= 1.1 * want:
                allr = rec.records()
                span = max(r.start for r in allr) - t_first
                problems.append('rate %d/s over %d s: %d requests at the receiver in the '
                                'window, want %d +-10%% (all %d requests came within %.2f s '
                                'of the first: %.0f/s)' % (rate, seconds, got, want, len(allr),
                                                           span, len(allr) / max(span, 1e-3)))
            if len(workers) < 2:
                problems.append('only %r delivered: the test does not show a fleet-wide '
                                'limit' % sorted(workers))
            # the endpoint without a policy goes at full speed (the local receiver takes
            # ~1,000/s): its backlog is in long before the limited one's would be
            if not free_done:
                problems.append('the endpoint without a policy got only %d of %d in %.1f s'
                                % (free_n, backlog, t_free))
            elif free_n / max(t_free, 1e-3) < 5 * rate:
                problems.append('the endpoint without a policy went at %.0f/s, want >= %d/s '
                                '(5x the other endpoint\'s rate)' % (free_n / t_free, 5 * rate))
            if problems:
                self.fail('\n'.join(problems))
            self.assertNotEqual(ep, ep_free)

    @pu.fast_test
    def test_rate_40_per_s_fleet_wide_10s(self):
        self._rate(40, 10, 800)

    @pu.long_test
    def test_long_rate_50_per_s_fleet_wide_30s(self):
        self._rate(50, 30, 2000)

    def _max_in_flight(self, per_worker=None):
        n, limit = 60, 4
        rec = pu.SeqRecorder(hold=0.2)
        with h.RedisServer() as rs, h.Receiver(rec) as rcv:
            ep = pu.endpoint(rs, rcv.url('/m'), max_in_flight=limit)
            kw = {'delivery_per_endpoint': per_worker} if per_worker else {}
            ws = fleet(self, rs, **kw)
            try:
                pu.wait_loaded(self, ws, 1)
                pu.publish_keyed(rs, ['a'], n)
                done = h.wait_until(lambda: rec.ok_count() >= n, 30)
                # the last answers are in; their settles follow
                h.wait_until(lambda: rs.call('ZCARD', pu.ep_key(ep, 'leases')) == 0, 5)
                leases = rs.call('ZCARD', pu.ep_key(ep, 'leases'))
                per = collections.Counter(f.get('worker') for _, f in u.log_entries(rs, ep))
            finally:
                pu.stop_all(ws)
            peak = rec.peak
            sys.stderr.write('\nmax_in_flight %d, 3 workers (per_endpoint %s): peak %d at the '
                             'receiver, %d requests, deliveries by worker %s\n'
                             % (limit, per_worker or 'default', peak, rec.n(), dict(per)))
            problems = []
            if not done:
                problems.append('%d of %d delivered in 30 s' % (rec.ok_count(), n))
            if peak > limit:
                problems.append('%d requests in flight at the receiver at once, max_in_flight '
                                'is %d' % (peak, limit))
            if peak < limit - 1:
                problems.append('at most %d requests in flight at once: max_in_flight %d is '
                                'not used (deliveries by worker: %s)' % (peak, limit, dict(per)))
            if leases:
                problems.append('%d leases left 5 s after the last delivery' % leases)
            return problems, per

    @pu.fast_test
    def test_max_in_flight_4_across_3_workers(self):
        problems, _ = self._max_in_flight()
        if problems:
            self.fail('\n'.join(problems))

    @pu.fast_test
    def test_max_in_flight_4_binds_across_workers(self):
        # each worker may have 2 in flight itself (delivery.per_endpoint): no worker alone
        # can fill the 4, so reaching 3 or 4 at the receiver takes two workers, and the
        # fleet-wide limit is what binds (3 x 2 = 6 without it). A worker must not hold
        # leases (the endpoint's slots) it cannot put in flight while the others idle.
        problems, per = self._max_in_flight(per_worker=2)
        if len(per) < 2:
            problems.append('only %r delivered: the endpoint\'s slots stayed with one worker'
                            % sorted(per))
        if problems:
            self.fail('\n'.join(problems))

    @pu.fast_test
    def test_429_retry_after_pauses_the_whole_fleet(self):
        n, limit, nth_429, pause = 400, 6, 60, 2.0
        state = {'count': 0, 't429': None}
        lock = threading.Lock()

        def decide(key, seq, req):
            with lock:
                i = state['count']
                state['count'] += 1
                if i != nth_429:
                    return 200
                state['t429'] = time.monotonic()  # when the answer is decided
            return (429, {'Retry-After': '%d' % pause})
        rec = pu.SeqRecorder(decide, hold=0.01)
        with h.RedisServer() as rs, h.Receiver(rec) as rcv:
            ep = pu.endpoint(rs, rcv.url('/p'), max_in_flight=limit)
            ws = fleet(self, rs, retry_schedule='200ms 200ms 200ms')
            try:
                pu.wait_loaded(self, ws, 1)
                pu.publish_keyed(rs, ['a'], n)
                done = h.wait_until(lambda: rec.ok_count() >= n, 40)
                workers = delivering_workers(rs, ep)
                pause_field = pu.state(rs, ep).get('pause')
            finally:
                pu.stop_all(ws)
            t429 = state['t429']
            self.assertIsNotNone(t429, 'the receiver never got %d requests' % nth_429)
            recs = rec.records()
            early = [r for r in recs if t429 < r.start <= t429 + 0.3]
            during = [r for r in recs if t429 + 0.3 < r.start < t429 + pause - 0.2]
            after = [r for r in recs if r.start >= t429 + pause - 0.2]
            first_after = min((r.start for r in after), default=None)
            sys.stderr.write(
                '\n429 Retry-After 2 at request %d: %d requests in the next 0.3 s, %d from '
                '0.3 s to %.1f s, first one after at +%s s; workers %s; state pause %r\n'
                % (nth_429, len(early), len(during), pause - 0.2,
                   '%.2f' % (first_after - t429) if first_after else 'never', sorted(workers),
                   pause_field))
            problems = []
            if len(workers) < 2:
                problems.append('only %r delivered: the test does not show a fleet-wide '
                                'pause' % sorted(workers))
            # already under way when the 429 was answered: at most the other slots
            if len(early) > limit - 1:
                problems.append('%d requests in the 0.3 s after the 429, at most %d were under '
                                'way' % (len(early), limit - 1))
            if during:
                problems.append('%d requests during the Retry-After pause (from +0.3 s to '
                                '+%.1f s), first at +%.2f s' % (len(during), pause - 0.2,
                                                                during[0].start - t429))
            if not done:
                problems.append('delivery did not resume: %d of %d delivered'
                                % (rec.ok_count(), n))
            if problems:
                self.fail('\n'.join(problems))


if __name__ == '__main__':
    h.main()
