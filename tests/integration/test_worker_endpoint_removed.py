"""Removing an endpoint while deliveries to it are in flight.

`hookq endpoint rm ID` deletes the endpoint's hash, delivery log and failure counter. The
attempts that were already in flight finish afterwards; their results must not bring any
of those keys back (P:{ep_ID}:log, P:{ep_ID}:failures, P:{ep_ID}:endpoint stay absent),
whether the receiver answers 200 or 500, and in the end nothing is pending: the jobs of
the removed endpoint are acknowledged, and its retries are dropped, not kept.

The receiver holds every request until the test lets it answer, a second after the rm,
so the rm certainly comes while requests are in flight.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402
import wkmore as m  # noqa: E402

N_EVENTS = 20
PER_ENDPOINT = 8     # the most in flight at once; the rest wait in the worker's queue
# A receiver that has answered nothing yet gets the scheduler's first window
# (worker/scheduler.h SCHED_INITIAL_WINDOW): that many requests are held here at once.
FIRST_WINDOW = 4
HOLD_AFTER_RM = 1.0  # seconds the held requests stay unanswered after the rm
WATCH = 3.0          # seconds the keys are watched after the last answer
# Requests are held for seconds: the attempt timeout must outlast that, and the
# visibility timeout the attempt timeout. Retries come back quickly.
ENV = u.env(delivery_timeout='15s', delivery_visibility_timeout='20s',
            delivery_per_endpoint=PER_ENDPOINT, retry_schedule='300ms 300ms', log_level='info')


class HeldReceiver(h.Receiver):
    """A Receiver whose requests all wait for release() before answering with status."""

    def __init__(self, status):
        self.gate = threading.Event()
        self.answered = 0
        self.started = 0

        def handler(req, nth):
            with self.lock:
                self.started += 1
            self.gate.wait(30)
            with self.lock:
                self.answered += 1
            return (status, {}, b'held') if status != 204 else None
        super().__init__(handler)

    def held(self):
        with self.lock:
            return self.started, self.answered


class EndpointRemoved(h.TestCase):

    def run_case(self, status):
        with h.RedisServer() as rs, HeldReceiver(status) as rcv:
            ep, _ = u.add_endpoint(rs, rcv.url('/held'), '--events', 'rm.test')
            keys = m.ep_keys(ep)
            for i in range(N_EVENTS):
                u.xadd_event(rs, 'rm.test', '{"i":%d}' % i)
            with h.Worker(rs, env=ENV) as w:
                self.assertTrue(h.wait_until(lambda: rcv.held()[0] >= FIRST_WINDOW, 20),
                                'requests in flight: %r\n%s' % (rcv.held(), w.log()[-2000:]))
                r = h.hookq(rs, 'endpoint', 'rm', ep)
                self.assertEqual(r.returncode, 0, r.stderr)
                in_flight = rcv.held()[0]
                self.assertEqual({k: rs.call('EXISTS', v) for k, v in keys.items()},
                                 {'endpoint': 0, 'failures': 0, 'log': 0}, 'right after rm')
                time.sleep(HOLD_AFTER_RM)
                rcv.gate.set()
                self.assertTrue(h.wait_until(lambda: rcv.held()[1] >= in_flight, 20),
                                'held requests not answered: %r' % (rcv.held(),))

                # Watch the keys while the worker writes the results of those attempts.
                seen = {}
                deadline = time.monotonic() + WATCH
                while time.monotonic() < deadline:
                    for k, key in keys.items():
                        if k not in seen and rs.call('EXISTS', key):
                            seen[k] = key
                    time.sleep(0.05)
                detail = {}
                for k, key in seen.items():
                    t = rs.call('TYPE', key)
                    detail[key] = (t, rs.call('XLEN', key) if t == 'stream' else
                                   rs.call('GET', key) if t == 'string' else
                                   rs.call('HGETALL', key) if t == 'hash' else None)
                self.assertEqual(seen, {}, '%d requests were in flight at the rm (answered %d); '
                                 'keys of the removed endpoint came back: %r'
                                 % (in_flight, status, detail))

                self.assertTrue(
                    h.wait_until(lambda: m.pending(rs) == (0, 0)
                                 and rs.call('ZCARD', u.DELAY) == 0, 15),
                    'still pending (events, jobs) %r, delayed %d'
                    % (m.pending(rs), rs.call('ZCARD', u.DELAY)))
                self.assertTrue(w.alive(), w.log()[-2000:])
            self.assertEqual({k: rs.call('EXISTS', v) for k, v in keys.items()},
                             {'endpoint': 0, 'failures': 0, 'log': 0}, 'at the end')
            self.assertEqual(rs.call('SISMEMBER', 'hookq:endpoints', ep), 0)

    def test_rm_while_in_flight_answered_200(self):
        """The held requests are answered 200 after the rm."""
        self.run_case(200)

    def test_rm_while_in_flight_answered_500(self):
        """The held requests are answered 500 after the rm: failure path and retries."""
        self.run_case(500)


if __name__ == '__main__':
    h.main()
