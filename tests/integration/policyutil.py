"""Helpers for the delivery-policy tests (test_policy_*.py, docs/policies.md): endpoints
with policy fields written straight into their hash (so the tests do not depend on the
CLI's policy flags), a receiver that records per order key every request's seq with its
start and end time and answer, the order checks, and the long/fast split.

Long tests (test_long_*) run as their own CTest entry (integration/<file>_long, label
"slow", see tests/CMakeLists.txt): HOOKQ_TESTS_LONG=skip leaves them out, =only runs only
them; unset (running the file by hand) runs everything."""
import collections
import json
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wkutil as u  # noqa: E402

VERSION = u.P + ':{q}:endpoints:version'
_LONG = os.environ.get('HOOKQ_TESTS_LONG', '')


def long_test(fn):
    """A test that takes a minute or more: skipped in the plain integration entry."""
    if _LONG == 'skip':
        return unittest.skip('long test: runs as the *_long CTest entry (label slow)')(fn)
    return fn


def fast_test(fn):
    """A test the *_long CTest entry leaves to the plain one."""
    if _LONG == 'only':
        return unittest.skip('fast test: runs in the plain CTest entry')(fn)
    return fn


# ---------------------------------------------------------------- endpoints

def ep_key(ep, what):
    """P:{ep_ID}:<what> (endpoint, state, leases, lanekeys, ready, tries, health, log)."""
    return '%s:{%s}:%s' % (u.P, ep, what)


def set_policy(rs, ep, **fields):
    """HSET the policy fields (docs/policies.md, common/endpoint.h) the way `endpoint
    update` would, lanes true included once any policy is set, then INCR the version so
    the workers reload. A value None is HDEL'd."""
    policy = {k: v for k, v in fields.items() if v is not None}
    gone = [k for k, v in fields.items() if v is None]
    if policy and set(policy) & {'ordered', 'order_key', 'rate', 'max_in_flight',
                                 'on_disabled', 'hold_max'}:
        policy.setdefault('lanes', 'true')
    cmds = []
    if policy:
        args = ['HSET', ep_key(ep, 'endpoint')]
        for k, v in policy.items():
            args += [k, str(v)]
        cmds.append(args)
    if gone:
        cmds.append(['HDEL', ep_key(ep, 'endpoint')] + gone)
    cmds.append(['INCR', VERSION])
    for r in rs.pipeline(cmds):
        if isinstance(r, h.RedisError):
            raise r


def endpoint(rs, url, events=None, **policy):
    """`hookq endpoint add` (so the hash is exactly what the CLI writes), then the policy
    fields. Returns the id."""
    args = ['--events', events] if events else []
    ep, _ = u.add_endpoint(rs, url, *args)
    if policy:
        set_policy(rs, ep, **policy)
    return ep


def disable(rs, ep):
    r = h.hookq(rs, 'endpoint', 'disable', ep)
    if r.returncode != 0:
        raise AssertionError('endpoint disable: %s %s' % (r.stdout, r.stderr))


def enable(rs, ep, *args):
    """hookq endpoint enable ID [args]; returns the CompletedProcess (not checked)."""
    return h.hookq(rs, 'endpoint', 'enable', ep, *args)


def state(rs, ep):
    """P:{ep_ID}:state as a dict ({} if absent)."""
    f = rs.call('HGETALL', ep_key(ep, 'state')) or []
    return dict(zip(f[0::2], f[1::2]))


def lane_id(stream_id):
    """docs/policies.md: the stream id with both parts zero-padded to 20 digits."""
    ms, seq = stream_id.split('-')
    return '%020d-%020d' % (int(ms), int(seq))


def wait_loaded(test, workers, n=None, timeout=20):
    """Every worker has loaded its endpoint table (n endpoints if given)."""
    want = 'endpoints: loaded %d' % n if n is not None else 'endpoints: loaded '
    for w in workers:
        test.assertEventually(lambda: want in w.log() or not w.alive(), timeout,
                              'worker never loaded its endpoints:\n' + w.log()[-2000:])
        test.assertTrue(w.alive(), 'worker exited:\n' + w.log()[-3000:])


def publish_keyed(rs, keys, per_key, type_='x', interleave=True, extra=None):
    """XADD len(keys) * per_key events, data {"key": K, "seq": N}, N counting 0.. per key,
    in publish order (round-robin over the keys if interleave, else key by key).
    Returns [(stream id, key, seq)] in publish order."""
    order = ([(k, s) for s in range(per_key) for k in keys] if interleave else
             [(k, s) for k in keys for s in range(per_key)])
    out = []
    for i in range(0, len(order), 1000):
        chunk = order[i:i + 1000]
        cmds = []
        for k, s in chunk:
            d = dict(extra or {}, key=k, seq=s)
            cmds.append(['XADD', u.EVENTS, '*', 'type', type_,
                         'data', json.dumps(d, separators=(',', ':'))])
        ids = rs.pipeline(cmds)
        for sid, (k, s) in zip(ids, chunk):
            if isinstance(sid, h.RedisError):
                raise sid
            out.append((sid, k, s))
    return out


# ---------------------------------------------------------------- the receiver

Rec = collections.namedtuple('Rec', 'key seq start end status wid attempt path')


class SeqRecorder:
    """A handler for h.Receiver that records, for every request, the data.key and
    data.seq of its body, when it came in and when its answer was decided (monotonic),
    and the status answered. decide(key, seq, req) -> status or (status, headers); None
    for 200. hold: seconds every request is held before it is answered (a function of
    (key, seq) or a number). Also counts requests in flight, overall and per key.

    A request's recorded end is before its answer is written, so a worker cannot have
    got the answer before `end`: an overlap the recorder shows is a real one."""

    def __init__(self, decide=None, hold=0.0):
        self.decide = decide
        self.hold = hold
        self.lock = threading.Lock()
        self.recs = []
        self.now = 0
        self.peak = 0
        self.now_key = collections.Counter()
        self.peak_key = collections.Counter()
        self.bad = []  # bodies that did not parse

    def __call__(self, req, nth):
        t0 = time.monotonic()
        try:
            d = json.loads(req.body)['data']
            key, seq = d.get('key'), d.get('seq')
        except (ValueError, KeyError, TypeError, AttributeError):
            key, seq = None, None
            with self.lock:
                self.bad.append(req.body[:200])
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.now_key[key] += 1
            self.peak_key[key] = max(self.peak_key[key], self.now_key[key])
        try:
            hold = self.hold(key, seq) if callable(self.hold) else self.hold
            if hold:
                time.sleep(hold)
            res = self.decide(key, seq, req) if self.decide else None
            status, headers = (res if isinstance(res, tuple) else (res or 200, {}))
        finally:
            with self.lock:
                self.now -= 1
                self.now_key[key] -= 1
        rec = Rec(key, seq, t0, time.monotonic(), status, req.headers.get('webhook-id'),
                  req.headers.get('x-hookq-attempt'), req.path)
        with self.lock:
            self.recs.append(rec)
        return (status, headers, b'' if status == 204 else b'ok')

    def records(self, path=None):
        with self.lock:
            return [r for r in self.recs if path is None or r.path == path]

    def ok_count(self, path=None):
        return len({(r.key, r.seq) for r in self.records(path) if 200 <= r.status < 300})

    def n(self, path=None):
        return len(self.records(path))


def random_503(p, seed, status=503):
    """decide(): answers `status` to a fraction p of requests (seeded), 200 otherwise."""
    rnd = random.Random(seed)
    lock = threading.Lock()

    def decide(key, seq, req):
        with lock:
            bad = rnd.random() < p
        return status if bad else 200
    return decide


# ---------------------------------------------------------------- order checks

def by_key(recs):
    out = collections.defaultdict(list)
    for r in sorted(recs, key=lambda r: r.start):
        out[r.key].append(r)
    return out


def order_violations(recs, skip=None, limit=None):
    """For each order key, over time: a request's seq must be at least the highest seq a
    2xx was answered to before it came in (the only repeat allowed is the most recent one
    again: a redelivery), and at most the next one after that (nothing overtakes an event
    that has not been delivered yet). seqs count 0, 1, 2... per key; skip: {key: set of
    seqs dead-lettered on purpose}, which the next one may pass. Returns readable
    violations (all, or at most limit)."""
    skip = skip or {}
    out = []
    for key, rs_ in by_key(recs).items():
        # (time, 0 = a 2xx answer decided, 1 = a request came in): at equal times the
        # answer first, since the recorder stamps an answer before it is written
        ev = sorted([(r.end, 0, r) for r in rs_ if 200 <= r.status < 300] +
                    [(r.start, 1, r) for r in rs_], key=lambda e: (e[0], e[1]))
        acked = -1
        for _, kind, r in ev:
            if kind == 0:
                acked = max(acked, r.seq)
                continue
            nxt = acked + 1
            while nxt in skip.get(key, ()):
                nxt += 1
            if r.seq < acked:
                out.append('key %s: seq %s requested after seq %s got a 2xx (went back)'
                           % (key, r.seq, acked))
            elif r.seq > nxt:
                out.append('key %s: seq %s requested while seq %s had no 2xx yet (overtook)'
                           % (key, r.seq, nxt))
            if limit and len(out) >= limit:
                return out
    return out


def overlaps(recs, limit=None):
    """Two different seqs of one key in flight at once (one came in before the other's
    answer was decided). Returns readable violations (all, or at most limit)."""
    out = []
    for key, rs_ in by_key(recs).items():
        active = []
        for r in rs_:
            active = [a for a in active if a.end > r.start]
            for a in active:
                if a.seq != r.seq:
                    out.append('key %s: seq %s came in %.1f ms before seq %s was answered'
                               % (key, r.seq, (a.end - r.start) * 1000, a.seq))
                    break
            active.append(r)
            if limit and len(out) >= limit:
                return out
    return out


def first_ok_order(recs):
    """{key: [seq, ...]}: each seq once, in the order of its first 2xx."""
    out = collections.defaultdict(list)
    seen = set()
    for r in sorted(recs, key=lambda r: r.end):
        if 200 <= r.status < 300 and (r.key, r.seq) not in seen:
            seen.add((r.key, r.seq))
            out[r.key].append(r.seq)
    return out


def max_overall_concurrency(recs):
    """The most requests in flight at once, from the records' intervals."""
    ev = sorted([(r.start, 1) for r in recs] + [(r.end, -1) for r in recs],
                key=lambda e: (e[0], e[1]))
    n = peak = 0
    for _, d in ev:
        n += d
        peak = max(peak, n)
    return peak


def distinct_keys_in_flight(recs):
    """The most different keys with a request in flight at once."""
    ev = sorted([(r.start, 1, r.key) for r in recs] + [(r.end, -1, r.key) for r in recs],
                key=lambda e: (e[0], e[1]))
    c = collections.Counter()
    peak = 0
    for _, d, k in ev:
        c[k] += d
        peak = max(peak, sum(1 for v in c.values() if v > 0))
    return peak


def worker(test, rs, env, name):
    """A started h.Worker whose log file is removed when the test is done (after its
    failure message has used it)."""
    w = h.Worker(rs, env=env, name=name).start()
    if not os.environ.get("HOOKQ_KEEP_LOGS"):
        test.addCleanup(_unlink, w.logf.name)
    return w


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def stop_all(workers):
    for w in workers:
        try:
            w.stop(timeout=10)
        except Exception:  # a valgrind report must not keep the others running
            w.kill()


def shown(what, v, n=20):
    """'what: N (first n):' and the first n lines of v."""
    return '%s: %d (first %d):\n  ' % (what, len(v), min(n, len(v))) + '\n  '.join(v[:n])
