"""Helpers shared by the worker integration tests (test_worker_*.py)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


P = 'hookq'
EVENTS = P + ':{q}:events'
JOBS = P + ':{q}:jobs'
DELAY = P + ':{q}:delay'
DEAD = P + ':{q}:dead'

# Short timings so the tests run in seconds.
FAST = {
    'HOOKQ_DELIVERY_TIMEOUT': '1s',
    'HOOKQ_DELIVERY_CONNECT_TIMEOUT': '1s',
    'HOOKQ_DELIVERY_VISIBILITY_TIMEOUT': '2s',
    'HOOKQ_DELIVERY_SHUTDOWN_GRACE': '5s',
    'HOOKQ_ENDPOINTS_RELOAD_INTERVAL': '200ms',
    'HOOKQ_RETRY_SCHEDULE': '200ms 400ms',
    'HOOKQ_REDIS_RECONNECT_MAX': '500ms',
    # Off unless a test turns it on (test_worker_breaker.py): most tests count the exact
    # attempts made to receivers that always fail, and an open breaker holds attempts and
    # publishes endpoint.failing, which every "*" endpoint then receives.
    'HOOKQ_BREAKER_ENABLED': 'false',
}


# Under valgrind (h.SLOW > 1) these FAST limits are scaled, so a slow but healthy worker
# does not time out its own deliveries or have its jobs reclaimed. The retry schedule
# and reload interval are not: tests assert on them, and they do not bound work.
SCALED = ('HOOKQ_DELIVERY_TIMEOUT', 'HOOKQ_DELIVERY_CONNECT_TIMEOUT',
          'HOOKQ_DELIVERY_VISIBILITY_TIMEOUT', 'HOOKQ_DELIVERY_SHUTDOWN_GRACE')


def _scale(v):
    n = int(v[:-1])  # FAST's scaled values are all whole seconds ("1s")
    return '%ds' % (n * h.SLOW)


def env(**kw):
    """FAST timings (scaled by h.SLOW where they bound work), then kw as HOOKQ_<KEY>;
    values given in kw are used as they are."""
    e = {k: (_scale(v) if k in SCALED else v) for k, v in FAST.items()}
    e.update({('HOOKQ_' + k.upper()): str(v) for k, v in kw.items()})
    return e


def add_endpoint(rs, url, *args):
    """hookq endpoint add; returns (id, secret)."""
    r = h.hookq(rs, '--json', 'endpoint', 'add', '--url', url, *args)
    if r.returncode != 0:
        raise AssertionError('endpoint add failed: %s %s' % (r.stdout, r.stderr))
    j = json.loads(r.stdout)
    return j['id'], j['secret']


def send(rs, type_, data, *args):
    r = h.hookq(rs, '--json', 'send', type_, data, *args)
    if r.returncode != 0:
        raise AssertionError('send failed: %s %s' % (r.stdout, r.stderr))
    return json.loads(r.stdout)['id']


def xadd_event(rs, type_, data, **fields):
    args = ['XADD', EVENTS, '*', 'type', type_, 'data', data]
    for k, v in fields.items():
        args += [k, v]
    return rs.call(*args)


def entries(rs, key, count=100000):
    """XRANGE as a list of (id, dict)."""
    out = []
    for sid, f in rs.call('XRANGE', key, '-', '+', 'COUNT', count):
        out.append((sid, dict(zip(f[::2], f[1::2]))))
    return out


def log_entries(rs, ep_id):
    return entries(rs, '%s:{%s}:log' % (P, ep_id))


def pel_count(rs, key, group):
    return rs.call('XPENDING', key, group)[0]
