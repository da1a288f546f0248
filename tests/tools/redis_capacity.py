#!/usr/bin/env python3
"""redis_capacity.py -- measure what each kind of hookq record costs in Redis memory.

Starts a private redis-server (127.0.0.1, a free port, --save '' in a temp dir), writes N
records of each kind the way hookq writes them (field names and typical value sizes per
docs/keys.md), and reports bytes per record two ways:

  used_memory   INFO memory used_memory after minus before, divided by N: everything the
                records cost (key, encoding, allocator rounding), what maxmemory counts
  MEMORY USAGE  of the key holding them (SAMPLES 0 = every element), divided by N; for
                one key per record (idempotency marks) the mean over a sample of keys

Each measurement runs on an empty database and reads used_memory on a fresh connection,
so the writer's query and reply buffers are not counted. docs/capacity.md explains the
numbers and shows how they add up.

    python3 tests/tools/redis_capacity.py                  # N=10000, Markdown table
    python3 tests/tools/redis_capacity.py --n 20000 --json
    python3 tests/tools/redis_capacity.py --sizes 600,4096     # your payload sizes
    REDIS_SERVER=/opt/redis-7.2/bin/redis-server python3 tests/tools/redis_capacity.py
"""
import argparse
import json
import os
import random
import string
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'integration'))
import harness as h  # noqa: E402

P = 'hookq'
EVENTS, JOBS, DELAY, DEAD = P + ':{q}:events', P + ':{q}:jobs', P + ':{q}:delay', P + ':{q}:dead'
CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
RNG = random.Random(42)  # the same records on every run


def ulid(prefix):
    """An id shaped like hookq's (prefix + 26 Crockford base32 chars)."""
    return prefix + '01J' + ''.join(RNG.choice(CROCKFORD) for _ in range(23))


def payload(size):
    """A JSON document of exactly size bytes (Redis stores it as it is: no compression)."""
    filler = ''.join(RNG.choice(string.ascii_letters + string.digits) for _ in range(size))
    head = '{"order":42,"note":"'
    return head + filler[:size - len(head) - 2] + '"}'


class Bench:
    def __init__(self, rs):
        self.rs = rs
        self.info = rs.call('INFO', 'server')

    def used(self):
        # A new connection: the one that wrote may still hold big buffers.
        c = h.Resp(self.rs.port)
        try:
            time.sleep(0.3)
            for line in c.call('INFO', 'memory').split('\r\n'):
                if line.startswith('used_memory:'):
                    return int(line.split(':')[1])
        finally:
            c.close()
        raise RuntimeError('no used_memory in INFO')

    def write(self, cmds, chunk_bytes=1 << 20):
        """Send cmds in pipelines of about chunk_bytes, then drop the connection."""
        c = h.Resp(self.rs.port)
        try:
            batch, size = [], 0
            for cmd in cmds:
                batch.append(cmd)
                size += sum(len(str(a)) for a in cmd)
                if size >= chunk_bytes or len(batch) >= 1000:
                    for r in c.pipeline(batch):
                        if isinstance(r, h.RedisError):
                            raise r
                    batch, size = [], 0
            if batch:
                for r in c.pipeline(batch):
                    if isinstance(r, h.RedisError):
                        raise r
        finally:
            c.close()

    def usage(self, key):
        return self.rs.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') or 0

    def measure(self, name, n, cmds, key=None, keys=None, setup=None):
        self.rs.call('FLUSHALL')
        if setup:
            setup()
        before = self.used()
        self.write(cmds)
        after = self.used()
        row = {'record': name, 'n': n, 'used_memory_per': (after - before) / n}
        if key:
            row['memory_usage_per'] = self.usage(key) / n
        elif keys:
            sample = keys[:: max(1, len(keys) // 200)]
            row['memory_usage_per'] = sum(self.usage(k) for k in sample) / len(sample)
        return row


def events_cmds(n, size):
    data = payload(size)
    ts = 1732356000000
    for i in range(n):
        # what hookq_publish writes: id, type, ts, data
        yield ('XADD', EVENTS, '*', 'id', ulid('evt_'), 'type', 'order.paid', 'ts', str(ts + i),
               'data', data)


def job_fields(i):
    return ('event', '1732356000%03d-%d' % (i % 1000, i // 1000), 'endpoint', ulid('ep_'),
            'attempt', '1')


def log_cmds(n, maxlen, failed):
    for i in range(n):
        yield ('XADD', P + ':{ep_01JDX3M6WQ8B0Z5Y2T9K4C7R1N}:log', 'MAXLEN', '~', str(maxlen), '*',
               'event_id', ulid('evt_'), 'event', '1732356000%03d-0' % (i % 1000),
               'type', 'order.paid', 'attempt', '2' if failed else '1',
               'outcome', 'retry' if failed else 'delivered',
               'status', '503' if failed else '200', 'latency_ms', str(20 + i % 300),
               'error', 'HTTP 503' if failed else '',
               'response', payload(256) if failed else '{"ok":true}',
               'delivery', ulid('dlv_'), 'worker', 'worker-7f9c-1234',
               'next_try', '2026-11-23T10:02:00.000Z' if failed else '')


def dead_cmds(n):
    for i in range(n):
        yield ('XADD', DEAD, '*', 'kind', 'job', 'event', '1732356000%03d-0' % (i % 1000),
               'event_id', ulid('evt_'), 'type', 'order.paid', 'endpoint', ulid('ep_'),
               'attempt', '6', 'error', 'HTTP 503', 'status', '503',
               'failed_at', '2026-11-23T14:00:00.000Z')


def run(n, sizes):
    rows = []
    with h.RedisServer() as rs:
        b = Bench(rs)
        version = [ln for ln in b.info.split('\r\n') if ln.startswith('redis_version:')][0]
        for size in sizes:
            rows.append(b.measure('events entry, data %d B' % size, n, events_cmds(n, size),
                                  key=EVENTS))

        # jobs: in the stream; then read by the deliver group (pending, in its PEL); then
        # acknowledged and XDELed as the worker does after a delivery
        jobs = [('XADD', JOBS, '*') + job_fields(i) for i in range(n)]
        rows.append(b.measure('jobs entry (not yet read)', n, jobs, key=JOBS))
        rs.call('FLUSHALL')
        base = b.used()
        rs.call('XGROUP', 'CREATE', JOBS, 'deliver', '$', 'MKSTREAM')
        b.write(jobs)
        rs.call('XREADGROUP', 'GROUP', 'deliver', 'w1', 'COUNT', str(n), 'STREAMS', JOBS, '>')
        pending = b.used()
        rows.append({'record': 'jobs entry, pending (read, not acknowledged)', 'n': n,
                     'used_memory_per': (pending - base) / n,
                     'memory_usage_per': b.usage(JOBS) / n})
        # Delivered jobs are acknowledged and XDELed. XDEL frees a stream node once every
        # entry in it is deleted; what stays is allocator residue, which does not grow:
        # three rounds of N jobs leave about what one does.
        for rnd in range(3):
            if rnd:
                b.write(jobs)
                rs.call('XREADGROUP', 'GROUP', 'deliver', 'w1', 'COUNT', str(n), 'STREAMS', JOBS,
                        '>')
            ids = [e[0] for e in rs.call('XRANGE', JOBS, '-', '+')]
            b.write([('XACK', JOBS, 'deliver', i) for i in ids] +
                    [('XDEL', JOBS, i) for i in ids])
        rows.append({'record': 'jobs stream after 3 x N jobs read, XACKed and XDELed '
                     '(total, XLEN %d)' % rs.call('XLEN', JOBS), 'n': 1,
                     'used_memory_per': b.used() - base, 'memory_usage_per': b.usage(JOBS)})

        # the delivery log: one entry per attempt, XADD MAXLEN ~ delivery.log_maxlen
        for failed in (False, True):
            rows.append(b.measure('delivery-log entry, %s' % ('failed attempt (256 B response)'
                                                               if failed else 'delivered'),
                                  n, log_cmds(n, 10 ** 9, failed),
                                  key=P + ':{ep_01JDX3M6WQ8B0Z5Y2T9K4C7R1N}:log'))
        # steady state of one endpoint's log at the default cap: write 2x the cap
        rs.call('FLUSHALL')
        base = b.used()
        b.write(log_cmds(20000, 10000, False))
        logkey = P + ':{ep_01JDX3M6WQ8B0Z5Y2T9K4C7R1N}:log'
        rows.append({'record': 'one endpoint\'s log after 20000 attempts, log_maxlen 10000 '
                     '(XLEN %d)' % rs.call('XLEN', logkey), 'n': 1,
                     'used_memory_per': b.used() - base, 'memory_usage_per': b.usage(logkey)})

        rows.append(b.measure('dead-letter entry', n, dead_cmds(n), key=DEAD))

        members = [('ZADD', DELAY, str(1732356000000 + i * 37),
                    '1732356000%03d-%d %s 3 %s' % (i % 1000, i // 1000, ulid('ep_'), ulid('dlv_')))
                   for i in range(n)]
        rows.append(b.measure('delay-zset member', n, members, key=DELAY))

        idem_keys = ['%s:{q}:idem:order-%010d-paid' % (P, i) for i in range(n)]
        rows.append(b.measure('idempotency mark (key with TTL)', n,
                              [('SET', k, '1732356000%03d-0' % (i % 1000), 'PX', '86400000')
                               for i, k in enumerate(idem_keys)], keys=idem_keys))
    return version.split(':')[1], rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=10000, help='records per measurement (10000)')
    ap.add_argument('--sizes', default='256,1024,16384',
                    help='event payload sizes in bytes, comma-separated (256,1024,16384)')
    ap.add_argument('--json', action='store_true', help='print JSON instead of a table')
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(',') if x]
    if args.n < 1 or any(x < 32 for x in sizes):
        ap.error('--n must be positive and every size at least 32 bytes')
    if os.environ.get('REDIS_SERVER'):
        h.REDIS_SERVER = os.environ['REDIS_SERVER']
    version, rows = run(args.n, sizes)
    if args.json:
        print(json.dumps({'redis_version': version, 'rows': rows}, indent=2))
        return
    print('Redis %s, N = %d per record kind\n' % (version, args.n))
    print('| record | bytes each (used_memory) | bytes each (MEMORY USAGE) |')
    print('|---|---:|---:|')
    for r in rows:
        print('| %s | %.0f | %s |' % (r['record'], r['used_memory_per'],
                                       '%.0f' % r['memory_usage_per']
                                       if 'memory_usage_per' in r else ''))


if __name__ == '__main__':
    main()
