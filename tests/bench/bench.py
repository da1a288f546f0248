#!/usr/bin/env python3
"""hookq benchmark driver (run it through tests/bench/run.sh, which builds the tools).

Everything runs on 127.0.0.1 in one temp dir: a private redis-server (persistence off;
one extra run with AOF everysec), nginx (`return 204`) and hqb-recv (our epoll receiver:
exact counts, 503 every Nth, held answers, publish->arrival latency). For each scenario it
pre-loads events, starts build/bin/hookq-worker and measures the drain. In the same run it
measures the BullMQ peer, wrk and the libcurl ceiling against the same receiver.
A full run (or --plots) then runs the throughput sweeps and redraws docs/bench/*.png with
gnuplot. docs/performance.md explains every figure and the scenario mix.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, 'tests', 'integration'))
import harness as h  # noqa: E402  (RedisServer, Resp, free_port, wait_until)

PREFIX = 'hookq'
EVENTS = PREFIX + ':{q}:events'
JOBS = PREFIX + ':{q}:jobs'
DELAY = PREFIX + ':{q}:delay'
DEAD = PREFIX + ':{q}:dead'
SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
CLK = os.sysconf('SC_CLK_TCK')
# Worker environment for "the defaults" scenarios: no delivery.* setting at all (a None
# value removes the variable the bench otherwise sets). Only delivery.shutdown_grace stays
# at the bench's 2s: it acts after the measurement, when the bench stops the worker.
DEFAULTS = {'HOOKQ_DELIVERY_CONCURRENCY': None}
PEER = os.environ.get('HOOKQ_BENCH_PEER', os.path.join(os.path.dirname(SRC), '..', 'shared', 'peers'))

SWEEP_CONC = (8, 16, 32, 64, 128)
SWEEP_ENDPOINTS = (1, 10, 100, 1000)
PLOTS_DIR = os.path.join(SRC, 'docs', 'bench')

# scenarios measured in the first run only (they take long and barely vary)
ONCE = {'idle_cpu', 'retry_latency'}

TARGETS = [
    # key, label, op, target
    ('hookq_over_bullmq', 'deliveries/s hookq / BullMQ peer', '>=', 10.0),
    ('hookq_over_wrk', 'deliveries/s hookq / wrk (same receiver, same conns)', '>=', 0.35),
    ('cmds_per_delivery', 'Redis commands per delivery (incl. inside scripts)', '<=', 3.0),
    ('p99_ms_1k', 'p99 publish->receive at 1k events/s (ms)', '<=', 5.0),
    ('fail10_over_ok', 'throughput 10% 503 / all ok (10-90% window)', '>=', 0.85),
    ('ep1000_over_ep1', '1,000 endpoints / 1 endpoint', '>=', 0.7),
    ('promote_jobs_per_s', 'promotion of delayed jobs (jobs/s)', '>=', 50000.0),
    ('rss_mib_1000', 'worker peak RSS with 1,000 in flight (MiB)', '<=', 64.0),
    ('defaults_over_tuned', 'defaults, 1 endpoint / tuned (per_endpoint 64)', '>=', 0.9),
    ('cmds_per_delivery_defaults', 'Redis commands per delivery at the defaults', '<=', 2.5),
    ('hookq_over_curl_ceiling', 'deliveries/s hookq / libcurl ceiling (nginx, 64 conns)', '>=',
     0.6),
    ('worker_cpu_us_per_delivery', 'worker CPU per delivery, 1 endpoint (us)', '<=', 30.0),
    ('p99_ms_half', 'p99 publish->receive at 50% of peak (ms)', '<=', 2.0),
    ('hang4_over_none', '16 fast endpoints: with 4 hanging / without', '>=', 0.8),
    ('hot90_over_1ep', 'hot 90% + 100 cold endpoints / 1 endpoint (deliveries/s)', '>=', 0.8),
    ('idle_cpu_pct', 'idle worker CPU (% of one core)', '<=', 0.1),
    ('retry_to_receiver_ms', 'hookq retry: CLI start -> receiver, median (ms)', '<=', 5.0),
    ('ordered10_per_s', 'ordered, 10 order keys, receiver 1 ms, defaults (deliveries/s)', '>=',
     3000.0),
    ('rate_error', 'rate-limited endpoint: |steady rate / configured - 1|', '<=', 0.1),
]


def log(*a):
    print('[bench %s]' % time.strftime('%H:%M:%S'), *a, file=sys.stderr, flush=True)


def proc_cpu(pid):
    """utime+stime of pid in seconds (None if gone)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            parts = f.read().rsplit(')', 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / CLK
    except (OSError, IndexError, ValueError):
        return None


def proc_status(pid, field):
    """A kB field of /proc/PID/status (VmHWM, VmRSS) in MiB."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def busy_cpu():
    """CPU seconds all cores spent busy since boot (/proc/stat: user nice system irq
    softirq steal)."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK


def cpu_of(pids):
    return sum(proc_cpu(p) or 0 for p in pids)


def ctx_switches(pid):
    """Voluntary + involuntary context switches of every thread of pid: how often it
    wakes up (None if gone)."""
    n = 0
    try:
        for tid in os.listdir('/proc/%d/task' % pid):
            with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
                for line in f:
                    if 'ctxt_switches:' in line:
                        n += int(line.split()[1])
    except (OSError, ValueError):
        return None
    return n


def children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def http_get(port, path, timeout=5.0):
    """Tiny HTTP/1.0 GET on loopback; returns the body text."""
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(b'GET %s HTTP/1.0\r\nHost: x\r\n\r\n' % path.encode())
        data = b''
        while True:
            k = s.recv(65536)
            if not k:
                break
            data += k
            if b'\r\n\r\n' in data:
                head, body = data.split(b'\r\n\r\n', 1)
                m = re.search(rb'content-length:\s*(\d+)', head, re.I)
                if not m or len(body) >= int(m.group(1)):
                    break  # no length: a 204 (ours) or nginx's close-delimited stub
    return data.split(b'\r\n\r\n', 1)[1].decode()


# ---------------------------------------------------------------- receivers

class Nginx:
    """nginx with a private config: `return 204`, stub_status for exact counts."""
    name = 'nginx'

    def __init__(self, tmp, workers=1, name='nginx'):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = h.free_port()
        self.workers = workers
        self.proc = None
        self.polls = 0
        self.base = 0

    def start(self):
        d = self.dir
        conf = f"""worker_processes {self.workers};
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_requests 100000;
  keepalive_timeout 120s;
  client_body_buffer_size 64k;
  server {{
    listen 127.0.0.1:{self.port} backlog=4096;
    location = /_stub {{ stub_status; }}
    location / {{ return 204; }}
  }}
}}
"""
        with open(os.path.join(d, 'nginx.conf'), 'w') as f:
            f.write(conf)
        self.proc = subprocess.Popen(['nginx', '-c', os.path.join(d, 'nginx.conf'), '-p', d + '/',
                                      '-e', os.path.join(d, 'error.log')],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                self._requests()
                return True
            except OSError:
                return False
        if not h.wait_until(up, 10):
            raise RuntimeError('nginx did not start (see %s/error.log)' % d)
        return self

    def url(self, path='/hook'):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def _counts(self):
        body = http_get(self.port, '/_stub')
        self.polls += 1
        f = body.split('\n')[2].split()
        return int(f[0]), int(f[2])  # accepted connections, requests

    def _requests(self):
        return self._counts()[1]

    def mark(self):
        """Start counting from now. stub_status counts its own polls: subtract them."""
        self.base_conns, self.base = self._counts()
        self.polls = 0

    def delivered(self):
        return self._requests() - self.base - self.polls

    def stats(self):
        conns, reqs = self._counts()
        # each poll is a request on a connection of its own
        return {'delivered': reqs - self.base - self.polls,
                'connections': conns - self.base_conns - self.polls}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Receiver:
    """A receiver process of ours on 127.0.0.1:self.port (hqb-recv, hq-receiver)."""

    def url(self, path='/hook'):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Hqb(Receiver):
    """tests/bench/hqb-recv.c: exact counts, failures, held answers, latency."""
    name = 'hqb-recv'

    def __init__(self, tools, threads=1, fail_every=0, delay_ms=0, latency=False, max_seconds=3600):
        self.args = [os.path.join(tools, 'hqb-recv'), '--threads', str(threads),
                     '--max-seconds', str(max_seconds)]
        if fail_every:
            self.args += ['--fail-every', str(fail_every)]
        if delay_ms:
            self.args += ['--delay-ms', str(delay_ms)]
        if latency:
            self.args += ['--latency']
        self.proc = None
        self.port = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        self.port = int(self.proc.stdout.readline())
        return self

    def stats(self):
        return json.loads(http_get(self.port, '/stats'))

    def mark(self):
        http_get(self.port, '/reset')

    def delivered(self):
        return self.stats()['ok']



class HqReceiver(Receiver):
    """build/bin/hq-receiver (tests/tools/hq-receiver.c, libmicrohttpd): only compared
    with wrk, since it reports its count at exit, not while running."""
    name = 'hq-receiver'

    def __init__(self, binary):
        self.binary = binary
        self.proc = None
        self.port = None

    def start(self):
        self.proc = subprocess.Popen([self.binary, '--quiet'], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r':(\d+)\s*$', line)
        if not m:
            self.stop()
            raise RuntimeError('hq-receiver: no port in %r' % line)
        self.port = int(m.group(1))
        return self



class Split:
    """Several receivers counted as one: drain() waits for the sum of their counts, and
    each part's time of completion (its `expected` counted) is kept in .done, the time it
    had half of them in .half (time.monotonic())."""

    def __init__(self, parts):
        self.parts = parts  # list of (name, receiver, expected)
        self.name = '+'.join(p[1].name for p in parts)
        self.done, self.half = {}, {}

    def pids(self):
        return [pid for _, r, _ in self.parts for pid in r.pids()]

    def mark(self):
        for _, r, _ in self.parts:
            r.mark()
        self.done, self.half = {}, {}

    def delivered(self):
        total = 0
        for name, r, expected in self.parts:
            n = r.delivered()
            total += n
            if name not in self.half and 2 * n >= expected:
                self.half[name] = time.monotonic()
            if name not in self.done and n >= expected:
                self.done[name] = time.monotonic()
        return total


# ---------------------------------------------------------------- redis helpers

def info(rs, section):
    out = {}
    for line in rs.call('INFO', section).splitlines():
        if ':' in line and not line.startswith('#'):
            k, v = line.split(':', 1)
            out[k] = v
    return out


def commandstats(rs):
    calls = {}
    for k, v in info(rs, 'commandstats').items():
        m = re.search(r'calls=(\d+)', v)
        if m and k.startswith('cmdstat_'):
            calls[k[len('cmdstat_'):]] = int(m.group(1))
    return calls


def reads_processed(rs):
    return int(info(rs, 'stats').get('total_reads_processed', 0))


def add_endpoints(rs, eps):
    """eps: list of (id, url, events). Written per docs/keys.md, like `hookq endpoint add`."""
    now = time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())
    cmds = []
    for eid, url, events in eps:
        cmds.append(['HSET', '%s:{%s}:endpoint' % (PREFIX, eid), 'url', url, 'events', events,
                     'secret', SECRET, 'description', 'bench', 'enabled', 'true',
                     'github_signature', 'false', 'headers', '[]', 'created_at', now,
                     'updated_at', now])
        cmds.append(['SADD', PREFIX + ':endpoints', eid])
        if len(cmds) >= 1000:
            rs.pipeline(cmds)
            cmds = []
    cmds.append(['INCR', PREFIX + ':{q}:endpoints:version'])
    for r in rs.pipeline(cmds):
        if isinstance(r, h.RedisError):
            raise r


def ep_id(i):
    # ids are ep_ + 26 Crockford base32 chars (id.h); a fixed, valid, sortable one per index
    return 'ep_01BENCH%019d' % i


def create_groups(rs):
    """Pre-loaded events must be seen by the worker whatever start id it would create the
    group with, so the groups exist (at 0) before it starts."""
    for key, group in ((EVENTS, 'fanout'), (JOBS, 'deliver')):
        try:
            rs.call('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
        except h.RedisError as e:
            if 'BUSYGROUP' not in str(e):
                raise


def pending(rs):
    n = 0
    for key, group in ((EVENTS, 'fanout'), (JOBS, 'deliver')):
        try:
            n += int(rs.call('XPENDING', key, group)[0])
        except h.RedisError:
            pass
    return n


def ep_key(eid, what):
    return '%s:{%s}:%s' % (PREFIX, eid, what)


def set_policy(rs, eid, fields):
    """Delivery-policy fields into an endpoint's hash (docs/policies.md,
    common/endpoint.h), lanes true with them, as `hookq endpoint update` writes them; then
    the version INCR that makes workers reload."""
    args = ['HSET', ep_key(eid, 'endpoint'), 'lanes', 'true']
    for k, v in fields.items():
        args += [k, str(v)]
    rs.call(*args)
    rs.call('INCR', PREFIX + ':{q}:endpoints:version')


def load_keyed(rs, n, keys, nbytes, type_='bench.event', batch=1000):
    """XADD n events whose data carries an order key: {"key":"k<i mod keys>","seq":i,
    "pad":"xx..."} padded to about nbytes (hqb-load's payloads have no key)."""
    t = str(int(time.time() * 1000))
    for start in range(0, n, batch):
        cmds = []
        for i in range(start, min(n, start + batch)):
            head = '{"key":"k%d","seq":%d,"pad":"' % (i % keys, i)
            data = head + 'x' * max(0, nbytes - len(head) - 2) + '"}'
            cmds.append(['XADD', EVENTS, '*', 'type', type_, 'data', data, 'ts', t])
        for r in rs.pipeline(cmds):
            if isinstance(r, h.RedisError):
                raise r


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args, tmp):
        self.a = args
        self.tmp = tmp
        self.tools = args.tools
        self.bin = args.bin
        self.worker_logs = []
        self.worker_prefix = []  # e.g. perf record ... -- (profile runs only)

    def load(self, rs, *argv, timeout=300):
        p = subprocess.run([os.path.join(self.tools, 'hqb-load'), argv[0], str(rs.port)] +
                           [str(x) for x in argv[1:]], capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError('hqb-load %s: %s' % (argv[0], p.stderr.strip()))
        return json.loads(p.stdout)

    def worker_env(self, rs, extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith('HOOKQ_')}
        env.update({'HOOKQ_REDIS_URL': rs.url, 'HOOKQ_SECURITY_ALLOW_PRIVATE_NETWORKS': 'true',
                    'HOOKQ_LOG_LEVEL': 'warn', 'HOOKQ_DELIVERY_CONCURRENCY': '64',
                    'HOOKQ_WORKER_NAME': 'bench', 'HOOKQ_DELIVERY_SHUTDOWN_GRACE': '2s'})
        env.update(extra or {})
        return {k: v for k, v in env.items() if v is not None}

    def start_worker(self, rs, extra, tag):
        logf = os.path.join(self.tmp, 'worker-%s-%d.log' % (tag, len(self.worker_logs)))
        self.worker_logs.append(logf)
        f = open(logf, 'w')
        p = subprocess.Popen(self.worker_prefix + [os.path.join(self.bin, 'hookq-worker')],
                             env=self.worker_env(rs, extra), stdout=f, stderr=subprocess.STDOUT,
                             cwd=self.tmp)
        f.close()
        p.logf = logf
        return p

    def stop_worker(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(8)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        with open(p.logf, errors='replace') as f:
            return f.read()

    @staticmethod
    def tail(text, n=5):
        return ' | '.join(text.strip().splitlines()[-n:])

    def drain(self, rs, rcv, n_events, expected, eps, extra, tag, types='bench.event',
              count_dead=False, preload=None, wait_acks=True, policy=None, load_fn=None,
              in_flight=None):
        """Pre-load, run one worker until `expected` deliveries arrive, measure.
        preload: [(n, types), ...] loaded in that order instead of (n_events, types).
        policy: {endpoint id: {field: value}} delivery-policy fields written into those
        endpoints' hashes (docs/policies.md) before the worker starts.
        load_fn(rs): loads the events itself instead of hqb-load (payloads hqb-load does
        not make, e.g. an order key in data).
        in_flight(rs): jobs still outstanding outside the two streams' pending lists (an
        endpoint's lane leases), waited for with them before the counts are taken.
        wait_acks=False: do not wait for XPENDING 0 (jobs that never finish, e.g. held by
        a hanging receiver); the command counts then miss the last acks."""
        rs.call('FLUSHALL')
        add_endpoints(rs, eps)
        for eid, fields in (policy or {}).items():
            set_policy(rs, eid, fields)
        create_groups(rs)
        self.own_xlen = 0
        if load_fn:
            load_fn(rs)
        else:
            for n, ty in preload or [(n_events, types)]:
                self.load(rs, 'events', EVENTS, n, ty, self.a.bytes)
        rcv.mark()
        cs0, rd0 = commandstats(rs), reads_processed(rs)
        rcpu0 = proc_cpu(rs.proc.pid)
        xcpu0 = cpu_of(rcv.pids())
        busy0 = busy_cpu()
        t0 = self.drain_t0 = time.monotonic()
        w = self.start_worker(rs, extra, tag)
        limit = t0 + max(20.0, expected / 500.0)
        got, dead, n_dead, next_dead = 0, None, 0, 0.0
        t10 = t90 = None
        while time.monotonic() < limit:
            got = rcv.delivered()
            if count_dead and got < expected and time.monotonic() >= next_dead:
                # a job that failed every attempt is dead-lettered: a legitimate end, not
                # one to wait for (we subtract these XLENs from the command counts)
                n_dead = int(rs.call('XLEN', DEAD))
                next_dead = time.monotonic() + 0.25
                self.own_xlen += 1
                if n_dead:
                    expected_left = expected - n_dead
                    if got >= expected_left:
                        expected = expected_left
                        break
            if t10 is None and got >= expected * 0.1:
                t10 = time.monotonic()
            if t90 is None and got >= expected * 0.9:
                t90 = time.monotonic()
            if got >= expected:
                break
            if w.poll() is not None:
                dead = w.returncode
                break
            time.sleep(0.01)
        t1 = time.monotonic()
        wcpu = proc_cpu(w.pid)
        xcpu1 = cpu_of(rcv.pids())
        busy1 = busy_cpu()
        rcpu_mid = proc_cpu(rs.proc.pid)
        rss = proc_status(w.pid, 'VmHWM')
        res = {'scenario': tag, 'events': n_events, 'expected': expected, 'delivered': got,
               'dead_lettered': n_dead,
               'seconds': round(t1 - t0, 3), 'loadavg_1m': round(os.getloadavg()[0], 2)}
        if dead is not None or got < expected:
            text = self.stop_worker(w)
            res['error'] = ('worker exited rc=%s' % dead if dead is not None else
                            'timeout: %d of %d delivered' % (got, expected))
            res['worker_log'] = self.tail(text)
            log(tag, res['error'], res['worker_log'])
            return res
        # Deliveries are counted when they arrive; the acks follow. Wait for them so the
        # command counts cover whole deliveries. Our own XPENDING polls are subtracted.
        polls = 0
        ack_limit = time.monotonic() + (15 if wait_acks else 0)
        while time.monotonic() < ack_limit:
            polls += 2
            if pending(rs) == 0 and (not in_flight or in_flight(rs) == 0):
                break
            time.sleep(0.01)
        rcpu1 = proc_cpu(rs.proc.pid)
        wcpu_acked = proc_cpu(w.pid)
        cs1, rd1 = commandstats(rs), reads_processed(rs)
        text = self.stop_worker(w)
        diff = {k: cs1.get(k, 0) - cs0.get(k, 0) for k in cs1}
        diff['info'] = 0
        diff['xpending'] = max(0, diff.get('xpending', 0) - polls)
        diff['xlen'] = max(0, diff.get('xlen', 0) - self.own_xlen)
        diff = {k: v for k, v in diff.items() if v > 0}
        total = sum(diff.values())
        top = sorted(diff.items(), key=lambda kv: -kv[1])[:8]
        # reads: ours are 2 INFO + the XPENDING polls (one read each)
        reads = rd1 - rd0 - polls - 2
        res.update({
            'deliveries_per_s': round(got / (t1 - t0), 1),
            # the 10%..90% window: the rate while work is plentiful, without start-up and
            # without the tail (last retries waiting out their schedule)
            'steady_per_s': round(0.8 * expected / (t90 - t10), 1) if t90 and t90 > t10 else None,
            'worker_cpu_s_per_10k': round((wcpu or 0) / got * 10000, 3),
            'redis_cpu_s_per_10k': round((rcpu1 - rcpu0) / got * 10000, 3),
            'cpu_s_per_10k': round(((wcpu_acked or wcpu or 0) + rcpu1 - rcpu0) / got * 10000, 3),
            'receiver_cpu_s_per_10k': round((xcpu1 - xcpu0) / got * 10000, 3),
            # cores busy with anything but worker, Redis and receiver during the drain:
            # the noise indicator (other work on the machine, the bench's own polling)
            'other_cores': round(max(0.0, (busy1 - busy0) - (wcpu or 0) - (rcpu_mid - rcpu0) -
                                     (xcpu1 - xcpu0)) / (t1 - t0), 2),
            'worker_rss_mib': round(rss, 1) if rss else None,
            'cmds_per_delivery': round(total / got, 3),
            'top_cmds_per_delivery': {k: round(v / got, 3) for k, v in top},
            'redis_reads_per_delivery': round(reads / got, 3),
        })
        if isinstance(rcv, Nginx):
            # connections the receiver accepted during the drain: keep-alive at work
            # means about delivery.concurrency, not one per delivery
            res['receiver_connections'] = rcv.stats()['connections']
        errs = [ln for ln in text.splitlines() if ' error' in ln.lower() or 'ERROR' in ln]
        if errs:
            res['worker_errors'] = len(errs)
            res['worker_error_sample'] = errs[0][:300]
        log(tag, '%.0f deliveries/s, %.2f cmds/delivery, %.2f reads/delivery, rss %s MiB, '
            'other load %.2f cores' % (res['deliveries_per_s'], res['cmds_per_delivery'],
                                       res['redis_reads_per_delivery'], res['worker_rss_mib'],
                                       res['other_cores']))
        return res

    # -------------------------------------------------------- scenarios

    def one_endpoint(self, rs, rcv, tag, extra=None, n=None):
        n = n or self.a.n
        env = {'HOOKQ_DELIVERY_PER_ENDPOINT': str(self.a.conc),
               'HOOKQ_DELIVERY_CONCURRENCY': str(self.a.conc)}
        env.update(extra or {})
        return self.drain(rs, rcv, n, n, [(ep_id(0), rcv.url('/hook'), '*')], env, tag)

    def defaults(self, rs, rcv, tag):
        # what a new user gets: no delivery.* setting at all (concurrency 64, per_endpoint
        # 0 = up to the concurrency, the scheduler's adaptive windows)
        n = self.a.n
        return self.drain(rs, rcv, n, n, [(ep_id(0), rcv.url('/hook'), '*')], DEFAULTS, tag)

    def many_endpoints(self, rs, rcv, tag, k=None, n=None, extra=None):
        # 1,000 endpoints, half exact (two exact types each), half prefix wildcards; events
        # of 1,000 types svc<i>.created round-robin, so every event matches exactly one.
        k = k or self.a.endpoints
        n = n or self.a.n
        eps = []
        for i in range(k):
            ev = ('svc%d.created,svc%d.deleted' % (i, i)) if i % 2 == 0 else ('svc%d.*' % i)
            eps.append((ep_id(i), rcv.url('/ep%d' % i), ev))
        env = {'HOOKQ_DELIVERY_CONCURRENCY': str(self.a.conc)} if extra is None else extra
        return self.drain(rs, rcv, n, n, eps, env, tag, types='svc%%d.created/%d' % k)

    def hanging(self, rs, ng, tag, hangers):
        """Defaults; 16 fast endpoints on nginx (/ep<i>, type fast<i>.created each) and
        `hangers` endpoints on an hqb-recv that holds every answer 10 minutes (far past
        delivery.timeout, 30 s by default), 20 events each, FIRST in the stream. Only the
        fast deliveries reach nginx, so its count is exact; the worker is stopped once
        they are all in (the held ones never finish)."""
        fast, n = 16, self.a.hang_n
        hq = Hqb(self.tools, delay_ms=600000, max_seconds=600).start() if hangers else None
        try:
            eps = [(ep_id(i), ng.url('/ep%d' % i), 'fast%d.created' % i) for i in range(fast)]
            preload = []
            if hangers:
                eps += [(ep_id(100 + j), hq.url('/hang%d' % j), 'hang%d.created' % j)
                        for j in range(hangers)]
                preload.append((hangers * self.a.hang_per, 'hang%%d.created/%d' % hangers))
            preload.append((n, 'fast%%d.created/%d' % fast))
            res = self.drain(rs, ng, n, n, eps, DEFAULTS, tag, preload=preload,
                             wait_acks=not hangers)
            res.update({'fast_endpoints': fast, 'hanging_endpoints': hangers,
                        'hanging_events': hangers * self.a.hang_per})
            if hq:
                st = hq.stats()
                # requests the hanging receiver got (all held): the slots they took
                res['hung_requests'] = st['requests']
                if st['requests'] == 0 and not res.get('error'):
                    res['note'] = 'no request reached the hanging receiver'
            return res
        finally:
            if hq:
                hq.stop()

    def hot(self, rs, ng, tag):
        """Defaults; 101 endpoints: `hot` gets 90% of N events (type hot.created, nginx
        /hot), cold<j> (j < 100) share the other 10% (type cold<j>.created, /ep<j> on a
        second nginx, so their arrivals are counted apart). Every 10th event in the stream
        is a cold one. When did the last cold delivery arrive, against the whole drain?"""
        n, k = self.a.n, 100
        n_cold = n // 10  # events 9, 19, 29, ... of the weighted cycle below
        cold = Nginx(self.tmp, 1, 'nginx-cold').start()
        try:
            eps = [(ep_id(0), ng.url('/hot'), 'hot.created')]
            eps += [(ep_id(1 + j), cold.url('/ep%d' % j), 'cold%d.created' % j) for j in range(k)]
            split = Split([('hot', ng, n - n_cold), ('cold', cold, n_cold)])
            res = self.drain(rs, split, n, n, eps, DEFAULTS, tag,
                             types='hot.created*9,cold%%d.created/%d*1' % k)
            t0 = self.drain_t0
            res.update({'hot_events': n - n_cold, 'cold_events': n_cold, 'cold_endpoints': k})
            if 'cold' in split.done:
                res['cold_done_s'] = round(split.done['cold'] - t0, 3)
            if 'hot' in split.done:
                res['hot_done_s'] = round(split.done['hot'] - t0, 3)
            if res.get('cold_done_s') is not None and not res.get('error'):
                total = max(split.done.values()) - t0
                res['cold_done_frac'] = round((split.done['cold'] - t0) / total, 3)
                # when half the cold deliveries were in: ~0.5 if cold ones simply go in
                # stream order (they are spread evenly through it)
                res['cold_half_frac'] = round((split.half['cold'] - t0) / total, 3)
                log(tag, 'last cold delivery at %.3f s of %.3f s (%.2f)' % (
                    res['cold_done_s'], total, res['cold_done_frac']))
            return res
        finally:
            cold.stop()

    def ordered(self, rs, tag, keys=10, delay_ms=1):
        """Worker defaults; one endpoint, ordered, order key data.key over `keys` keys
        (docs/policies.md), on hqb-recv answering after delay_ms: at most one delivery in
        flight per key, so this is bound by keys / (delay + a claim round trip).
        `lanes_used` says whether the worker kept the order (it left the per-key
        last-delivered ids in P:{ep}:state); a worker without lanes delivers unordered,
        and its figure is not an ordered one."""
        n = self.a.n
        eid = ep_id(0)
        rcv = Hqb(self.tools, delay_ms=delay_ms).start()
        try:
            res = self.drain(rs, rcv, n, n, [(eid, rcv.url('/hook'), '*')], DEFAULTS, tag,
                             policy={eid: {'ordered': 'true', 'order_key': 'data.key'}},
                             load_fn=lambda r: load_keyed(r, n, keys, self.a.bytes),
                             in_flight=lambda r: int(r.call('ZCARD', ep_key(eid, 'leases'))))
            st = rs.call('HGETALL', ep_key(eid, 'state')) or []
            st = dict(zip(st[0::2], st[1::2]))
            last = sorted(k for k in st if k.startswith('last:'))
            res.update({'keys': keys, 'receiver_delay_ms': delay_ms,
                        'lanes_used': len(last) == keys,
                        'max_in_flight_at_receiver': rcv.stats().get('max_pending')})
            if (res['max_in_flight_at_receiver'] or 0) > keys and not res.get('error'):
                res['note'] = ('%d requests at the receiver at once: more than one per key'
                               % res['max_in_flight_at_receiver'])
                log(tag, res['note'])
            if not res['lanes_used'] and not res.get('error'):
                res['note'] = ('the worker left no last:<key> in %s (%d of %d keys): it did '
                               'not deliver through ordered lanes' % (ep_key(eid, 'state'),
                                                                      len(last), keys))
                log(tag, res['note'])
            return res
        finally:
            rcv.stop()

    def rate(self, rs, ng, tag):
        """Worker defaults; one endpoint on nginx with rate a.rate/s and a backlog of
        a.rate_seconds of it: the steady deliveries/s (10-90% window, so the start's burst
        is out) against the configured rate."""
        rate, n = self.a.rate, self.a.rate * self.a.rate_seconds
        eid = ep_id(0)
        res = self.drain(rs, ng, n, n, [(eid, ng.url('/hook'), '*')], DEFAULTS, tag,
                         policy={eid: {'rate': '%d/s' % rate}},
                         in_flight=lambda r: int(r.call('ZCARD', ep_key(eid, 'leases'))))
        res['rate'] = rate
        if res.get('steady_per_s'):
            res['over_configured'] = round(res['steady_per_s'] / rate, 3)
            res['error_vs_configured'] = round(abs(res['steady_per_s'] / rate - 1), 3)
            log(tag, 'steady %.0f/s for a rate of %d/s (%.3f)' % (
                res['steady_per_s'], rate, res['over_configured']))
        return res

    def idle_cpu(self, rs, ng, tag):
        """Defaults, one endpoint, 10 events delivered; then the worker's CPU (utime+stime)
        and the Redis commands it issues over a.idle_seconds of nothing to do."""
        secs = self.a.idle_seconds
        rs.call('FLUSHALL')
        add_endpoints(rs, [(ep_id(0), ng.url('/hook'), '*')])
        create_groups(rs)
        ng.mark()
        w = self.start_worker(rs, DEFAULTS, tag)
        try:
            self.load(rs, 'events', EVENTS, 10, 'bench.event', self.a.bytes)
            if not h.wait_until(lambda: ng.delivered() >= 10, 20):
                return {'scenario': tag, 'error': 'warm-up events not delivered',
                        'worker_log': self.tail(self.stop_worker(w))}
            h.wait_until(lambda: pending(rs) == 0, 10)
            time.sleep(1.0)  # past the last acks and log writes
            c0, cs0, x0 = proc_cpu(w.pid), commandstats(rs), ctx_switches(w.pid)
            t0 = time.monotonic()
            while time.monotonic() < t0 + secs and w.poll() is None:
                time.sleep(0.25)  # the bench sends Redis nothing meanwhile
            c1, cs1, x1 = proc_cpu(w.pid), commandstats(rs), ctx_switches(w.pid)
            dt = time.monotonic() - t0
            if w.poll() is not None or c1 is None:
                return {'scenario': tag, 'error': 'worker exited rc=%s' % w.returncode,
                        'worker_log': self.tail(self.stop_worker(w))}
            diff = {k: cs1.get(k, 0) - cs0.get(k, 0) for k in cs1 if k != 'info'}
            diff = {k: v for k, v in diff.items() if v > 0}
            res = {'scenario': tag, 'seconds': round(dt, 2), 'cpu_s': round(c1 - c0, 3),
                   'idle_cpu_pct': round((c1 - c0) / dt * 100, 4),
                   # utime+stime count in clock ticks: the figure's resolution
                   'resolution_pct': round(100.0 / CLK / dt, 4),
                   'redis_cmds_per_s': round(sum(diff.values()) / dt, 2),
                   'redis_cmds_per_s_by_command': {k: round(v / dt, 2) for k, v in sorted(
                       diff.items(), key=lambda kv: -kv[1])[:8]},
                   'wakeups_per_s': round((x1 - x0) / dt, 1) if x0 is not None and x1 is not None
                   else None,
                   'loadavg_1m': round(os.getloadavg()[0], 2)}
            log(tag, '%.3f%% of a core, %.1f Redis commands/s, %s wakeups/s over %.0f s' % (
                res['idle_cpu_pct'], res['redis_cmds_per_s'], res['wakeups_per_s'], dt))
            return res
        finally:
            self.stop_worker(w)

    def retry_latency(self, rs, tag):
        """Defaults, one endpoint on hqb-recv --latency (it timestamps every arrival), one
        event delivered; then `hookq retry <id>` a.retry_n times, 300 ms apart so the
        worker is idle each time: arrival - CLI start and arrival - CLI exit."""
        rcv = Hqb(self.tools, latency=True).start()
        w = None
        try:
            rs.call('FLUSHALL')
            add_endpoints(rs, [(ep_id(0), rcv.url('/hook'), '*')])
            create_groups(rs)
            w = self.start_worker(rs, DEFAULTS, tag)
            evid = 'bench-retry-1'
            data = '{"pub_us":%d,"pad":"%s"}' % (time.time() * 1e6, 'x' * (self.a.bytes - 40))
            rs.call('XADD', EVENTS, '*', 'id', evid, 'type', 'bench.event', 'data', data,
                    'ts', str(int(time.time() * 1000)))
            if not h.wait_until(lambda: rcv.stats()['ok'] >= 1, 10):
                return {'scenario': tag, 'error': 'first delivery not received',
                        'worker_log': self.tail(self.stop_worker(w))}
            h.wait_until(lambda: pending(rs) == 0, 10)
            env = {k: v for k, v in os.environ.items() if not k.startswith('HOOKQ_')}
            env['HOOKQ_REDIS_URL'] = rs.url
            # the CLI beside the worker, or this tree's (--bin may hold a wrapper only)
            cli = os.path.join(self.bin, 'hookq')
            if not os.path.exists(cli):
                cli = os.path.join(SRC, 'build', 'bin', 'hookq')
            from_start, from_exit, cli_ms = [], [], []
            for i in range(self.a.retry_n):
                time.sleep(0.3)
                before = rcv.stats()['ok']
                ts = time.time()  # CLOCK_REALTIME, the clock hqb-recv stamps arrivals with
                p = subprocess.run([cli, 'retry', evid], env=env, capture_output=True,
                                   text=True, timeout=10)
                te = time.time()
                if p.returncode != 0:
                    return {'scenario': tag, 'error': 'hookq retry rc=%d: %s' % (
                        p.returncode, self.tail(p.stderr + p.stdout))}
                if not h.wait_until(lambda: rcv.stats()['ok'] > before, 10, interval=0.02):
                    return {'scenario': tag, 'error': 'retry %d not received' % (i + 1),
                            'worker_log': self.tail(self.stop_worker(w))}
                last = http_get(rcv.port, '/samples', timeout=10).strip().splitlines()[-1]
                arrived = int(last.split()[0]) / 1e6
                from_start.append((arrived - ts) * 1000)
                from_exit.append((arrived - te) * 1000)
                cli_ms.append((te - ts) * 1000)

            def dist(v):
                return {'p50': round(statistics.median(v), 3), 'max': round(max(v), 3),
                        'min': round(min(v), 3)}
            res = {'scenario': tag, 'retries': len(from_start),
                   'from_cli_start_ms': dist(from_start),
                   # negative: the delivery arrived before the CLI process had exited
                   'from_cli_exit_ms': dist(from_exit), 'cli_runtime_ms': dist(cli_ms)}
            log(tag, 'CLI start -> receiver p50 %.2f max %.2f ms; CLI exit -> receiver p50 '
                '%.2f ms; CLI run time p50 %.2f ms' % (
                    res['from_cli_start_ms']['p50'], res['from_cli_start_ms']['max'],
                    res['from_cli_exit_ms']['p50'], res['cli_runtime_ms']['p50']))
            return res
        finally:
            if w:
                self.stop_worker(w)
            rcv.stop()

    def failures(self, rs, tools_tmp, tag):
        rcv = Hqb(self.tools, fail_every=10).start()
        try:
            env = {'HOOKQ_DELIVERY_PER_ENDPOINT': str(self.a.conc),
                   'HOOKQ_DELIVERY_CONCURRENCY': str(self.a.conc),
                   # 10 attempts: a job fails all of them with p = 1e-10 (with 6, one of
                   # 50,000 jobs is dead-lettered in ~5% of runs)
                   'HOOKQ_RETRY_SCHEDULE': ' '.join(['100ms'] * 9),
                   'HOOKQ_RETRY_JITTER': '0', 'HOOKQ_ENDPOINTS_DISABLE_AFTER': '0'}
            res = self.drain(rs, rcv, self.a.n, self.a.n, [(ep_id(0), rcv.url('/hook'), '*')],
                             env, tag, count_dead=True)
            st = rcv.stats()
            res['receiver_failed'] = st['failed']
            return res
        finally:
            rcv.stop()

    def latency(self, rs, rate, secs, tag):
        rcv = Hqb(self.tools, latency=True).start()
        w = None
        try:
            rs.call('FLUSHALL')
            add_endpoints(rs, [(ep_id(0), rcv.url('/hook'), '*')])
            create_groups(rs)
            w = self.start_worker(rs, {'HOOKQ_DELIVERY_PER_ENDPOINT': str(self.a.conc),
                                       'HOOKQ_DELIVERY_CONCURRENCY': str(self.a.conc)}, tag)
            # warm up: one event through, so the worker is reading before we time anything
            self.load(rs, 'events', EVENTS, 1, 'bench.event', self.a.bytes)
            if not h.wait_until(lambda: rcv.stats()['ok'] >= 1, 10):
                text = self.stop_worker(w)
                return {'scenario': tag, 'error': 'warm-up event not delivered',
                        'worker_log': self.tail(text)}
            rcv.mark()
            out = self.load(rs, 'pub', EVENTS, rate, secs, 'bench.event', self.a.bytes,
                            timeout=secs + 60)
            sent = out['n']
            h.wait_until(lambda: rcv.stats()['ok'] >= sent, 10 + secs)
            st = rcv.stats()
            res = {'scenario': tag, 'rate': rate, 'published': sent, 'received': st['ok'],
                   'pub_seconds': out['seconds'], 'p50_ms': st['lat_ms']['p50'],
                   'p90_ms': st['lat_ms']['p90'], 'p99_ms': st['lat_ms']['p99'],
                   'max_ms': st['lat_ms']['max'], 'expect_100': st['expect_100']}
            if st['ok'] < sent:
                res['error'] = 'only %d of %d received' % (st['ok'], sent)
            # when did the slow ones arrive? (periodic stalls show as regular gaps)
            samples = [tuple(int(x) for x in ln.split()) for ln in
                       http_get(rcv.port, '/samples', timeout=30).splitlines() if ln]
            if samples:
                t0s = samples[0][0] - samples[0][1]
                slow = sorted(samples, key=lambda x: -x[1])[:max(1, len(samples) // 100)]
                res['slowest_1pct_at_s'] = sorted(round((a - t0s) / 1e6, 3) for a, _ in slow)[:60]
                res['samples_over_10ms'] = sum(1 for _, d in samples if d > 10000)
                res['cdf_ms'] = cdf([d for _, d in samples])
            log(tag, 'rate %d: p50 %s p99 %s max %s ms' % (rate, res['p50_ms'], res['p99_ms'],
                                                           res['max_ms']))
            return res
        finally:
            if w:
                self.stop_worker(w)
            rcv.stop()

    def rss_inflight(self, rs, tag):
        conc = self.a.inflight
        rcv = Hqb(self.tools, delay_ms=self.a.hold_ms).start()
        try:
            n = conc * 4
            env = {'HOOKQ_DELIVERY_CONCURRENCY': str(conc), 'HOOKQ_DELIVERY_PER_ENDPOINT': str(conc),
                   'HOOKQ_DELIVERY_BATCH': str(min(conc, 1000))}
            res = self.drain(rs, rcv, n, n, [(ep_id(0), rcv.url('/hook'), '*')], env, tag)
            res['hold_ms'] = self.a.hold_ms
            res['max_in_flight_at_receiver'] = rcv.stats().get('max_pending')
            return res
        finally:
            rcv.stop()

    def promotion(self, rs, rcv, tag):
        """N jobs already due in P:{q}:delay (score 0), all for one event and one endpoint
        on the fast receiver; time from the first member moved until the zset is empty."""
        n = self.a.promote_n
        rs.call('FLUSHALL')
        add_endpoints(rs, [(ep_id(0), rcv.url('/hook'), '*')])
        create_groups(rs)
        evid = rs.call('XADD', EVENTS, '*', 'type', 'bench.event', 'data', '{"x":1}')
        loaded = self.load(rs, 'delay', DELAY, n, evid, ep_id(0), timeout=300)
        assert int(rs.call('ZCARD', DELAY)) == n, 'delay zset not loaded'
        env = {'HOOKQ_DELIVERY_CONCURRENCY': str(self.a.conc),
               'HOOKQ_DELIVERY_PER_ENDPOINT': str(self.a.conc)}
        t0 = time.monotonic()
        w = self.start_worker(rs, env, tag)
        tfirst, left = None, n
        limit = t0 + self.a.promote_timeout
        while time.monotonic() < limit and w.poll() is None:
            left = int(rs.call('ZCARD', DELAY))
            now = time.monotonic()
            if tfirst is None and left < n:
                tfirst = now
            if left == 0:
                break
            time.sleep(0.02)
        t1 = time.monotonic()
        dead = w.poll()
        text = self.stop_worker(w)
        moved = n - left
        res = {'scenario': tag, 'delayed': n, 'moved': moved, 'load_seconds': loaded['seconds'],
               'seconds_to_first': round(tfirst - t0, 3) if tfirst else None,
               'seconds': round(t1 - (tfirst or t0), 3)}
        if moved == 0:
            res['error'] = ('worker exited rc=%s' % dead) if dead is not None else 'nothing moved'
            res['worker_log'] = self.tail(text)
        else:
            res['jobs_per_s'] = round(moved / max(t1 - (tfirst or t0), 1e-3), 1)
            if left:
                res['error'] = 'timeout: %d of %d moved' % (moved, n)
        log(tag, res.get('jobs_per_s'), 'jobs/s promoted', res.get('error', ''))
        rs.call('FLUSHALL')  # free the memory now
        return res

    def promote_script(self, rs, tag):
        """Redis-side ceiling of promotion: common/lua/promote.lua called back to back
        (LIMIT 1000) on the same N due members, no worker involved."""
        n = self.a.promote_n
        rs.call('FLUSHALL')
        with open(os.path.join(SRC, 'common', 'lua', 'promote.lua')) as f:
            sha = rs.call('SCRIPT', 'LOAD', f.read())
        self.load(rs, 'delay', DELAY, n, '1-0', ep_id(0), timeout=300)
        t0 = time.monotonic()
        moved, limit = 0, t0 + self.a.promote_timeout
        while moved < n and time.monotonic() < limit:
            k = int(rs.call('EVALSHA', sha, 2, DELAY, JOBS, 1000))
            if k == 0:
                break
            moved += k
        dt = time.monotonic() - t0
        rs.call('FLUSHALL')
        res = {'scenario': tag, 'delayed': n, 'moved': moved, 'seconds': round(dt, 3),
               'jobs_per_s': round(moved / dt, 1)}
        log(tag, res['jobs_per_s'], 'jobs/s (promote.lua alone, LIMIT 1000)')
        return res

    def bullmq(self, rs, rcv):
        rs.call('FLUSHALL')
        script = os.path.join(self.a.peers, 'bullmq', 'run-peer.sh')
        n = self.a.peer_n
        cs0 = commandstats(rs)
        try:
            p = subprocess.run([script, str(n), str(self.a.conc), rcv.url('/peer'), str(rs.port)],
                               capture_output=True, text=True, timeout=60 + n / 200)
        except subprocess.TimeoutExpired:
            return {'error': 'bullmq peer timed out'}
        line = [ln for ln in p.stdout.splitlines() if ln.startswith('{')]
        if p.returncode != 0 or not line:
            return {'error': 'bullmq peer failed: %s' % self.tail(p.stderr + p.stdout)}
        res = json.loads(line[-1])
        cs1 = commandstats(rs)
        diff = {k: cs1.get(k, 0) - cs0.get(k, 0) for k in cs1 if k != 'info'}
        total = sum(v for v in diff.values() if v > 0)
        # includes the peer's enqueue (addBulk) and its cleanup (obliterate): context only
        res['redis_cmds_per_job_incl_enqueue'] = round(total / n, 2)
        log('bullmq', res.get('deliveries_per_s'), 'deliveries/s,',
            res['redis_cmds_per_job_incl_enqueue'], 'Redis commands per job incl. enqueue')
        return res

    def wrk(self, rcv):
        lua = os.path.join(self.tmp, 'post.lua')
        with open(lua, 'w') as f:
            f.write('wrk.method = "POST"\nwrk.body = \'{"pad":"\' .. string.rep("x", %d) .. \'"}\'\n'
                    'wrk.headers["Content-Type"] = "application/json"\n' % (self.a.bytes - 10))
        x0 = cpu_of(rcv.pids())
        p = subprocess.run(['wrk', '-t2', '-c%d' % self.a.conc, '-d%ds' % self.a.wrk_seconds,
                            '-s', lua, rcv.url('/wrk')], capture_output=True, text=True,
                           timeout=self.a.wrk_seconds + 30)
        x1 = cpu_of(rcv.pids())
        m = re.search(r'Requests/sec:\s+([\d.]+)', p.stdout)
        total = re.search(r'(\d+) requests in', p.stdout)
        if not m:
            return {'error': 'wrk: %s' % self.tail(p.stderr + p.stdout)}
        log('wrk', m.group(1), 'req/s')
        res = {'req_per_s': float(m.group(1)), 'connections': self.a.conc}
        if total and int(total.group(1)):
            res['receiver_cpu_s_per_10k'] = round((x1 - x0) / int(total.group(1)) * 10000, 3)
        return res

    def wrk_hq_receiver(self):
        binary = os.path.join(self.bin, 'hq-receiver')
        if not os.path.exists(binary):
            return {'error': 'no %s' % binary}
        rcv = HqReceiver(binary).start()
        try:
            return self.wrk(rcv)
        finally:
            rcv.stop()

    def ceiling(self, rcv):
        p = subprocess.run([os.path.join(self.tools, 'curl-ceiling'), rcv.url('/ceil'),
                            str(self.a.ceiling_n), str(self.a.conc), str(self.a.bytes)],
                           capture_output=True, text=True, timeout=120)
        try:
            res = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {'error': 'curl-ceiling: %s' % self.tail(p.stderr + p.stdout)}
        log('curl-ceiling', res.get('req_per_s'), 'req/s')
        return res

    # -------------------------------------------------------- one run

    def run_once(self, i):
        log('run %d of %d' % (i + 1, self.a.runs))
        r = {}
        rs = h.RedisServer().start()
        ng = Nginx(self.tmp, self.a.nginx_workers).start()
        hq = Hqb(self.tools).start()
        # Figures that form a ratio are measured next to each other in time, since the
        # machine's other load moves between minutes.
        steps = [
            ('hookq_1ep', lambda: self.one_endpoint(rs, ng, 'hookq_1ep')),
            ('hookq_1ep_defaults', lambda: self.defaults(rs, ng, 'hookq_1ep_defaults')),
            ('wrk', lambda: self.wrk(ng)),
            ('curl_ceiling', lambda: self.ceiling(ng)),
            ('bullmq', lambda: self.bullmq(rs, ng)),
            ('hookq_1000ep', lambda: self.many_endpoints(rs, ng, 'hookq_1000ep')),
            ('hookq_fast16', lambda: self.hanging(rs, ng, 'hookq_fast16', 0)),
            ('hookq_hang4', lambda: self.hanging(rs, ng, 'hookq_hang4', 4)),
            ('hookq_hot90', lambda: self.hot(rs, ng, 'hookq_hot90')),
            # delivery policies (issue 11, docs/policies.md)
            ('hookq_ordered10', lambda: self.ordered(rs, 'hookq_ordered10')),
            ('hookq_rate', lambda: self.rate(rs, ng, 'hookq_rate')),
            ('hookq_1ep_nolog', lambda: self.one_endpoint(rs, ng, 'hookq_1ep_nolog',
                                                          {'HOOKQ_DELIVERY_LOG': 'false'})),
            ('hookq_1ep_hqb', lambda: self.one_endpoint(rs, hq, 'hookq_1ep_hqb')),
            ('hookq_fail10', lambda: self.failures(rs, self.tmp, 'hookq_fail10')),
            ('wrk_hqb', lambda: self.wrk(hq)),
            ('wrk_hq_receiver', self.wrk_hq_receiver),
            ('latency_1k', lambda: self.latency(rs, 1000, self.a.lat_seconds, 'latency_1k')),
            ('latency_half', lambda: self.latency(
                rs, max(100, int((get(r, 'hookq_1ep_hqb', 'deliveries_per_s') or
                                  get(r, 'hookq_1ep', 'deliveries_per_s') or 2000) / 2)),
                self.a.lat_seconds, 'latency_half_peak')),
            ('rss_1000', lambda: self.rss_inflight(rs, 'rss_1000_in_flight')),
            ('promotion', lambda: self.promotion(rs, ng, 'promotion')),
            ('promote_script', lambda: self.promote_script(rs, 'promote_script')),
            # first run only (ONCE): a minute of idleness, and 20 CLI calls
            ('idle_cpu', lambda: self.idle_cpu(rs, ng, 'idle_cpu')),
            ('retry_latency', lambda: self.retry_latency(rs, 'retry_latency')),
        ]
        try:
            for key, fn in steps:
                if self.a.only and key not in self.a.only:
                    continue
                if key in ONCE and i > 0:
                    continue
                try:
                    r[key] = fn()
                except Exception as e:  # one broken scenario must not hide the others
                    log(key, 'failed:', repr(e))
                    r[key] = {'error': repr(e)}
        finally:
            hq.stop()
            ng.stop()
            rs.stop()
            shutil.rmtree(rs.dir, ignore_errors=True)
        r['ratios'] = ratios(r)
        return r

    def profile(self):
        """One extra `hookq_1ep` drain with the worker under `perf record` (its figures
        are not used); returns the top inclusive user-space symbols of the worker."""
        log('profile: hookq_1ep under perf record')
        data = os.path.join(self.tmp, 'perf.data')
        rs = h.RedisServer().start()
        ng = Nginx(self.tmp, self.a.nginx_workers).start()
        self.worker_prefix = ['perf', 'record', '-q', '-F', '999', '--call-graph', 'dwarf,16384',
                              '-o', data, '--']
        try:
            res = self.one_endpoint(rs, ng, 'profile', n=min(self.a.n, 30000))
        finally:
            self.worker_prefix = []
            ng.stop()
            rs.stop()
            shutil.rmtree(rs.dir, ignore_errors=True)
        if res.get('error') or not os.path.exists(data):
            return {'error': res.get('error', 'no perf data')}
        p = subprocess.run(['perf', 'report', '-i', data, '--children', '--sort', 'symbol',
                            '-g', 'none', '--stdio'], capture_output=True, text=True, timeout=600)
        rows = []
        for line in p.stdout.splitlines():
            m = re.match(r'\s*([\d.]+)%\s+([\d.]+)%\s+\[\.\]\s+(\S+)', line)
            if m and not m.group(3).startswith('0x'):
                rows.append({'symbol': m.group(3), 'children_pct': float(m.group(1)),
                             'self_pct': float(m.group(2))})
        return {'top': rows[:40], 'deliveries_per_s_under_perf': res.get('deliveries_per_s')}

    def sweeps(self, runs):
        """The throughput sweeps behind docs/bench/*.png (--plots; a full run enables it),
        once, after the runs: deliveries/s against connections (1 endpoint, concurrency =
        per_endpoint = c) and against the number of endpoints (defaults)."""
        want = [k for k in ('sweep_conc', 'sweep_endpoints')
                if (self.a.only and k in self.a.only) or (not self.a.only and self.a.plots)]
        if not want:
            return None
        log('sweeps:', ', '.join(want), '(N=%d each)' % self.a.sweep_n)
        rs = h.RedisServer().start()
        ng = Nginx(self.tmp, self.a.nginx_workers).start()
        out = {'n': self.a.sweep_n}
        try:
            if 'sweep_conc' in want:
                pts = []
                for c in SWEEP_CONC:
                    env = {'HOOKQ_DELIVERY_CONCURRENCY': str(c),
                           'HOOKQ_DELIVERY_PER_ENDPOINT': str(c)}
                    r = self.one_endpoint(rs, ng, 'sweep_conc_%d' % c, env, n=self.a.sweep_n)
                    pts.append({'connections': c, 'deliveries_per_s': r.get('deliveries_per_s'),
                                'error': r.get('error')})
                out['conc'] = pts
                # reference markers at 64 connections: this bench's medians, else measured now
                wrk = median_of(runs, ('wrk', 'req_per_s')) or get(self.wrk(ng), 'req_per_s')
                ceil = (median_of(runs, ('curl_ceiling', 'req_per_s')) or
                        get(self.ceiling(ng), 'req_per_s'))
                out['conc_refs'] = {'connections': self.a.conc, 'wrk': wrk, 'curl_ceiling': ceil}
            if 'sweep_endpoints' in want:
                pts = []
                for k in SWEEP_ENDPOINTS:
                    r = self.many_endpoints(rs, ng, 'sweep_ep_%d' % k, k=k, n=self.a.sweep_n,
                                            extra=DEFAULTS)
                    pts.append({'endpoints': k, 'deliveries_per_s': r.get('deliveries_per_s'),
                                'error': r.get('error')})
                out['endpoints'] = pts
        finally:
            ng.stop()
            rs.stop()
            shutil.rmtree(rs.dir, ignore_errors=True)
        return out

    def run_aof(self):
        log('AOF run (appendonly yes, appendfsync everysec)')
        rs = h.RedisServer(appendonly=True).start()
        ng = Nginx(self.tmp, self.a.nginx_workers).start()
        try:
            return self.one_endpoint(rs, ng, 'hookq_1ep_aof')
        finally:
            ng.stop()
            rs.stop()
            shutil.rmtree(rs.dir, ignore_errors=True)


def get(r, *path):
    for p in path:
        if not isinstance(r, dict) or r.get(p) is None:
            return None
        r = r[p]
    return r


def div(a, b):
    return round(a / b, 3) if a is not None and b else None


def mul(a, b):
    return a * b if a is not None else None


def rnd(v, nd=1):
    return round(v, nd) if v is not None else None


def ratios(r):
    hq = get(r, 'hookq_1ep', 'deliveries_per_s')
    return {
        'hookq_over_bullmq': div(hq, get(r, 'bullmq', 'deliveries_per_s')),
        'hookq_over_wrk': div(hq, get(r, 'wrk', 'req_per_s')),
        'hookq_over_curl_ceiling': div(hq, get(r, 'curl_ceiling', 'req_per_s')),
        'cmds_per_delivery': get(r, 'hookq_1ep', 'cmds_per_delivery'),
        'redis_reads_per_delivery': get(r, 'hookq_1ep', 'redis_reads_per_delivery'),
        'p99_ms_1k': get(r, 'latency_1k', 'p99_ms'),
        'fail10_over_ok': div(get(r, 'hookq_fail10', 'steady_per_s'),
                              get(r, 'hookq_1ep_hqb', 'steady_per_s')),
        'fail10_over_ok_whole_drain': div(get(r, 'hookq_fail10', 'deliveries_per_s'),
                                          get(r, 'hookq_1ep_hqb', 'deliveries_per_s')),
        'ep1000_over_ep1': div(get(r, 'hookq_1000ep', 'deliveries_per_s'), hq),
        'promote_jobs_per_s': get(r, 'promotion', 'jobs_per_s'),
        'rss_mib_1000': get(r, 'rss_1000', 'worker_rss_mib'),
        'nolog_over_log': div(get(r, 'hookq_1ep_nolog', 'deliveries_per_s'), hq),
        'defaults_over_tuned': div(get(r, 'hookq_1ep_defaults', 'deliveries_per_s'), hq),
        'cmds_per_delivery_defaults': get(r, 'hookq_1ep_defaults', 'cmds_per_delivery'),
        'hookq_hqb_over_wrk_hqb': div(get(r, 'hookq_1ep_hqb', 'deliveries_per_s'),
                                      get(r, 'wrk_hqb', 'req_per_s')),
        # s per 10k deliveries x 100 = us per delivery
        'worker_cpu_us_per_delivery': rnd(mul(get(r, 'hookq_1ep', 'worker_cpu_s_per_10k'), 100)),
        'p99_ms_half': get(r, 'latency_half', 'p99_ms'),
        'hang4_over_none': div(get(r, 'hookq_hang4', 'deliveries_per_s'),
                               get(r, 'hookq_fast16', 'deliveries_per_s')),
        'hot90_over_1ep': div(get(r, 'hookq_hot90', 'deliveries_per_s'),
                              get(r, 'hookq_1ep_defaults', 'deliveries_per_s')),
        'hot90_cold_done_frac': get(r, 'hookq_hot90', 'cold_done_frac'),
        'idle_cpu_pct': get(r, 'idle_cpu', 'idle_cpu_pct'),
        'retry_to_receiver_ms': get(r, 'retry_latency', 'from_cli_start_ms', 'p50'),
        # an ordered figure only from a worker that kept the order (lanes)
        'ordered10_per_s': (get(r, 'hookq_ordered10', 'deliveries_per_s')
                            if get(r, 'hookq_ordered10', 'lanes_used') else None),
        'rate_over_configured': get(r, 'hookq_rate', 'over_configured'),
        'rate_error': get(r, 'hookq_rate', 'error_vs_configured'),
    }


CDF_P = sorted(set([i / 200 for i in range(201)] + [0.99 + i / 1000 for i in range(10)] +
                   [0.9995, 0.9999]))


def cdf(deltas_us):
    """[[fraction, ms], ...]: the latency below which that fraction of samples arrived."""
    v = sorted(deltas_us)
    return [[p, round(v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] / 1000.0, 3)]
            for p in CDF_P]


def median_of(runs, path):
    vals = [v for v in (get(r, *path) for r in runs) if isinstance(v, (int, float))]
    return round(statistics.median(vals), 3) if vals else None


ROWS = [
    # label, path
    ('hookq 1 endpoint (nginx) deliveries/s', ('hookq_1ep', 'deliveries_per_s')),
    ('hookq 1 endpoint, delivery log off', ('hookq_1ep_nolog', 'deliveries_per_s')),
    ('hookq 1 endpoint, default settings', ('hookq_1ep_defaults', 'deliveries_per_s')),
    ('  its Redis commands per delivery', ('hookq_1ep_defaults', 'cmds_per_delivery')),
    ('hookq 1,000 endpoints deliveries/s', ('hookq_1000ep', 'deliveries_per_s')),
    ('hookq 1 endpoint (hqb-recv) deliveries/s', ('hookq_1ep_hqb', 'deliveries_per_s')),
    ('hookq 10% 503 (hqb-recv) deliveries/s', ('hookq_fail10', 'deliveries_per_s')),
    ('BullMQ peer deliveries/s (conc 64)', ('bullmq', 'deliveries_per_s')),
    ('  its Redis commands per job, incl. enqueue+cleanup', ('bullmq', 'redis_cmds_per_job_incl_enqueue')),
    ('wrk req/s (nginx)', ('wrk', 'req_per_s')),
    ('wrk req/s (hqb-recv)', ('wrk_hqb', 'req_per_s')),
    ('wrk req/s (hq-receiver, libmicrohttpd)', ('wrk_hq_receiver', 'req_per_s')),
    ('libcurl ceiling req/s (nginx)', ('curl_ceiling', 'req_per_s')),
    ('CPU s / 10k deliveries, worker+redis', ('hookq_1ep', 'cpu_s_per_10k')),
    ('  worker part', ('hookq_1ep', 'worker_cpu_s_per_10k')),
    ('  redis part', ('hookq_1ep', 'redis_cpu_s_per_10k')),
    ('  receiver part (not in the sum)', ('hookq_1ep', 'receiver_cpu_s_per_10k')),
    ('other load during hookq 1 endpoint (cores)', ('hookq_1ep', 'other_cores')),
    ('worker peak RSS, 64 in flight (MiB)', ('hookq_1ep', 'worker_rss_mib')),
    ('Redis reads (round trips) / delivery', ('hookq_1ep', 'redis_reads_per_delivery')),
    ('latency 1k/s p50 ms', ('latency_1k', 'p50_ms')),
    ('latency 1k/s max ms', ('latency_1k', 'max_ms')),
    ('latency 50% peak: rate', ('latency_half', 'rate')),
    ('latency 50% peak p50 ms', ('latency_half', 'p50_ms')),
    ('latency 50% peak p99 ms', ('latency_half', 'p99_ms')),
    ('latency 50% peak max ms', ('latency_half', 'max_ms')),
    ('promote.lua alone, LIMIT 1000 (jobs/s)', ('promote_script', 'jobs_per_s')),
    ('ratio 10% 503 / all ok, whole drain incl. retry tail', ('ratios', 'fail10_over_ok_whole_drain')),
    ('ratio hookq / curl ceiling', ('ratios', 'hookq_over_curl_ceiling')),
    ('ratio delivery log off / on', ('ratios', 'nolog_over_log')),
    ('ratio hookq / wrk, both on hqb-recv', ('ratios', 'hookq_hqb_over_wrk_hqb')),
    ('worker CPU per delivery, 1 endpoint (us)', ('ratios', 'worker_cpu_us_per_delivery')),
    ('hookq 16 fast endpoints, defaults, deliveries/s', ('hookq_fast16', 'deliveries_per_s')),
    ('  the same + 4 hanging endpoints first', ('hookq_hang4', 'deliveries_per_s')),
    ('  requests held by the hanging receiver', ('hookq_hang4', 'hung_requests')),
    ('hookq hot 90% + 100 cold endpoints, deliveries/s', ('hookq_hot90', 'deliveries_per_s')),
    ('  last cold delivery (s after worker start)', ('hookq_hot90', 'cold_done_s')),
    ('  last cold delivery / drain time (stream order: ~1.0)', ('hookq_hot90', 'cold_done_frac')),
    ('  last hot delivery (s)', ('hookq_hot90', 'hot_done_s')),
    ('  half the cold deliveries in (fraction of drain)', ('hookq_hot90', 'cold_half_frac')),
    ('hookq ordered, 10 keys, receiver 1 ms, deliveries/s', ('hookq_ordered10', 'deliveries_per_s')),
    ('  its Redis commands per delivery', ('hookq_ordered10', 'cmds_per_delivery')),
    ('  most requests at the receiver at once', ('hookq_ordered10', 'max_in_flight_at_receiver')),
    ('hookq rate-limited endpoint: steady deliveries/s', ('hookq_rate', 'steady_per_s')),
    ('  against the configured rate', ('hookq_rate', 'over_configured')),
    ('idle worker: Redis commands/s', ('idle_cpu', 'redis_cmds_per_s')),
    ('idle worker: wakeups/s (context switches)', ('idle_cpu', 'wakeups_per_s')),
    ('idle worker: CPU resolution (% of a core, 1 tick)', ('idle_cpu', 'resolution_pct')),
    ('retry: CLI start -> receiver, max ms', ('retry_latency', 'from_cli_start_ms', 'max')),
    ('retry: CLI exit -> receiver, median ms', ('retry_latency', 'from_cli_exit_ms', 'p50')),
    ('retry: the CLI process alone, median ms', ('retry_latency', 'cli_runtime_ms', 'p50')),
]


def fmt(v):
    if v is None:
        return 'n/a'
    if isinstance(v, float) and v >= 1000:
        return '{:,.0f}'.format(v)
    if isinstance(v, (int,)) and v >= 1000:
        return '{:,}'.format(v)
    return '%g' % v


def summarize(runs, aof, args):
    table = []
    for label, path in ROWS:
        table.append({'figure': label, 'median': median_of(runs, path)})
    targets = []
    for key, label, op, target in TARGETS:
        v = median_of(runs, ('ratios', key))
        ok = None if v is None else (v >= target if op == '>=' else v <= target)
        targets.append({'key': key, 'figure': label, 'median': v, 'target': '%s %g' % (op, target),
                        'result': 'n/a' if ok is None else ('PASS' if ok else 'MISS')})
    top = get(runs[-1], 'hookq_1ep', 'top_cmds_per_delivery')
    aof_rate = get(aof, 'deliveries_per_s') if aof else None
    return {'table': table, 'targets': targets, 'top_cmds_per_delivery_last_run': top,
            'aof': {'deliveries_per_s': aof_rate,
                    'over_no_persistence': div(aof_rate, median_of(runs, ('hookq_1ep',
                                                                          'deliveries_per_s'))),
                    'cpu_s_per_10k': get(aof, 'cpu_s_per_10k') if aof else None}}


def render(summary, args, meta):
    lines = ['', 'hookq benchmark: %s, %d run(s), N=%d, %d B payload, %d connections' % (
        'quick' if args.quick else 'full', args.runs, args.n, args.bytes, args.conc),
        'machine: %s' % meta['machine'], '']
    w = max(len(r['figure']) for r in summary['table'] + summary['targets']) + 2
    lines.append('%-*s %14s' % (w, 'figure (median of runs)', 'value'))
    lines.append('-' * (w + 15))
    for r in summary['table']:
        lines.append('%-*s %14s' % (w, r['figure'], fmt(r['median'])))
    a = summary['aof']
    lines.append('%-*s %14s' % (w, 'AOF everysec: deliveries/s (1 run)', fmt(a['deliveries_per_s'])))
    lines.append('%-*s %14s' % (w, 'AOF everysec / no persistence', fmt(a['over_no_persistence'])))
    lines.append('')
    lines.append('%-*s %14s %10s %6s' % (w, 'target', 'value', 'target', ''))
    lines.append('-' * (w + 33))
    for t in summary['targets']:
        lines.append('%-*s %14s %10s %6s' % (w, t['figure'], fmt(t['median']), t['target'],
                                              t['result']))
    top = summary['top_cmds_per_delivery_last_run']
    if top:
        lines.append('')
        lines.append('Redis commands per delivery, by command (1 endpoint, last run): ' +
                     ', '.join('%s %g' % kv for kv in top.items()))
    return '\n'.join(lines) + '\n'


def render_sweep(sweep):
    lines = ['', 'sweeps (N=%d per point, one run):' % sweep['n']]
    if sweep.get('conc'):
        refs = sweep.get('conc_refs') or {}
        lines.append('  connections      ' + ''.join('%10d' % p['connections']
                                                     for p in sweep['conc']))
        lines.append('  deliveries/s     ' + ''.join('%10s' % fmt(p['deliveries_per_s'])
                                                     for p in sweep['conc']))
        lines.append('  reference at %d: wrk %s req/s, libcurl ceiling %s req/s' % (
            refs.get('connections', 64), fmt(refs.get('wrk')), fmt(refs.get('curl_ceiling'))))
    if sweep.get('endpoints'):
        lines.append('  endpoints        ' + ''.join('%10d' % p['endpoints']
                                                     for p in sweep['endpoints']))
        lines.append('  deliveries/s     ' + ''.join('%10s' % fmt(p['deliveries_per_s'])
                                                     for p in sweep['endpoints']))
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- plots

def gnuplot_run(script, what):
    p = subprocess.run(['gnuplot'], input=script, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError('gnuplot (%s): %s' % (what, p.stderr.strip()[-500:]))


def write_dat(tmp, name, rows):
    path = os.path.join(tmp, name)
    with open(path, 'w') as f:
        for row in rows:
            f.write(' '.join(str(x) for x in row) + '\n')
    return path


def gp_str(text):
    """A gnuplot double-quoted string (it turns \\n into a line break)."""
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def plots(runs, sweep, meta, args, tmp):
    """docs/bench/*.png with gnuplot (Debian gnuplot-nox); without it the plots are
    skipped with a message, the bench itself does not fail. Returns {file: note}."""
    if not shutil.which('gnuplot'):
        msg = 'gnuplot not found: plots skipped (Debian: apt-get install gnuplot-nox)'
        log(msg)
        return {'skipped': msg}
    os.makedirs(args.plots_dir, exist_ok=True)
    sub = '%s run, git %s, %s, %s' % ('quick' if args.quick else 'full', meta['git'],
                                      meta['started'], meta['machine'])
    head = ('set terminal pngcairo size 960,540 font "sans,10" noenhanced\n'
            'set grid\nset key top left box opaque\nset format y "%.0f"\n'
            'set offsets 0, 0, graph 0.12, 0\n')
    done = {}

    def out(name):
        return os.path.join(args.plots_dir, name)

    conc = [(p['connections'], p['deliveries_per_s']) for p in get(sweep, 'conc') or []
            if p.get('deliveries_per_s')]
    refs = get(sweep, 'conc_refs') or {}
    if conc:
        f = out('throughput-vs-connections.png')
        d = write_dat(tmp, 'conc.dat', conc)
        lines = ['%s u 1:2 w lp lw 2 pt 7 ps 1.3 t %s' % (gp_str(d), gp_str(
                     'hookq, 1 endpoint, nginx (concurrency = per_endpoint = x)')),
                 "%s u 1:2:(sprintf('%%.0f', $2)) w labels offset 0,1.2 notitle" % gp_str(d)]
        for key, label, pt in (('wrk', 'wrk -t2 -c%d, same nginx', 5),
                               ('curl_ceiling', 'libcurl ceiling, %d in flight, same nginx', 9)):
            if refs.get(key):
                r = write_dat(tmp, key + '.dat', [(refs['connections'], refs[key])])
                lines.append('%s u 1:2 w p pt %d ps 2.2 t %s' % (
                    gp_str(r), pt, gp_str(label % refs['connections'])))
                lines.append("%s u 1:2:(sprintf('%%.0f', $2)) w labels offset 5,0 notitle" %
                             gp_str(r))
        gnuplot_run(head + 'set output %s\nset title %s\n' % (gp_str(f), gp_str(
            'deliveries/s against connections (N=%d per point)\n%s' % (sweep['n'], sub))) +
            'set xlabel "connections"\nset ylabel "deliveries/s (requests/s)"\n'
            'set logscale x 2\nset xtics (8,16,32,64,128)\nset xrange [6:180]\n'
            'set yrange [0:*]\nplot ' + ', \\\n  '.join(lines) + '\n', f)
        done[f] = 'ok'
    eps = [(p['endpoints'], p['deliveries_per_s']) for p in get(sweep, 'endpoints') or []
           if p.get('deliveries_per_s')]
    if eps:
        f = out('throughput-vs-endpoints.png')
        d = write_dat(tmp, 'eps.dat', eps)
        gnuplot_run(head + 'set output %s\nset title %s\n' % (gp_str(f), gp_str(
            'deliveries/s against endpoints, worker defaults (N=%d per point, each event '
            'to exactly one endpoint)\n%s' % (sweep['n'], sub))) +
            'set xlabel "endpoints"\nset ylabel "deliveries/s"\nset logscale x 10\n'
            'set xtics (1,10,100,1000)\nset xrange [0.7:1500]\nset yrange [0:*]\n'
            'plot %s u 1:2 w lp lw 2 pt 7 ps 1.3 t "hookq, nginx", '
            "%s u 1:2:(sprintf('%%.0f', $2)) w labels offset 0,1.2 notitle\n" % (
                gp_str(d), gp_str(d)), f)
        done[f] = 'ok'
    curves = []
    for key in ('latency_1k', 'latency_half'):
        # the run whose p99 is the median one, so the picture matches the table
        have = sorted((x[key] for x in runs if get(x, key, 'cdf_ms') and
                       get(x, key, 'p99_ms') is not None), key=lambda v: v['p99_ms'])
        r = have[len(have) // 2] if have else None
        if r:
            curves.append((key, '%s, %s events/s: p50 %s, p99 %s ms' % (
                key, fmt(r['rate']), r['p50_ms'], r['p99_ms']), r['cdf_ms']))
    if curves:
        f = out('latency-cdf.png')
        lcdf, ltail = [], []
        for i, (key, label, pts) in enumerate(curves):
            d = write_dat(tmp, key + '.cdf', [(max(ms, 0.001), p) for p, ms in pts])
            t = write_dat(tmp, key + '.tail', [(max(ms, 0.001), 1 - p) for p, ms in pts if p < 1])
            lcdf.append('%s u 1:2 w steps lw 2 lc %d t %s' % (gp_str(d), i + 1, gp_str(label)))
            ltail.append('%s u 1:2 w steps lw 2 lc %d notitle' % (gp_str(t), i + 1))
        gnuplot_run(
            head.replace('960,540', '1200,520') + 'set output %s\n' % gp_str(f) +
            'set multiplot layout 1,2 title %s\n' % gp_str(
                'publish -> receive latency (hqb-recv --latency, idle worker)\n' + sub) +
            'set logscale x 10\nset xlabel "ms"\nset format y "%g"\n'
            'set title "CDF: fraction of deliveries within x ms"\nset ylabel "fraction"\n'
            'set yrange [0:1.02]\nset key bottom right box opaque\n'
            'set arrow 1 from 2,0 to 2,1.02 nohead dt 2 lc rgb "gray40"\n'
            'set offsets 0, 0, 0, 0\n'
            'set label 1 "p99 target at 50% of peak: 2 ms" at 2.15,0.5 tc rgb "gray40"\n'
            'plot ' + ', '.join(lcdf) + '\n'
            'unset label 1\nunset key\n'
            'set title "tail: fraction slower than x ms"\nset ylabel "fraction (log)"\n'
            'set logscale y 10\nset yrange [0.0001:1]\nset format y "%g"\n'
            'set arrow 2 from graph 0, first 0.01 to graph 1, first 0.01 nohead dt 3 '
            'lc rgb "gray40"\n'
            'plot ' + ', '.join(ltail) + '\nunset multiplot\n', f)
        done[f] = 'ok'
    for name, what in (('throughput-vs-connections.png', 'sweep_conc'),
                       ('throughput-vs-endpoints.png', 'sweep_endpoints'),
                       ('latency-cdf.png', 'latency_1k / latency_half')):
        if out(name) not in done:
            log('plot %s not drawn: no %s figures in this bench' % (name, what))
    for f in done:
        log('wrote', os.path.relpath(f, SRC))
    return done


# Scenarios without a policy, compared between two builds by --compare (issue 11: the
# endpoints without a policy stay on the shared stream and may lose at most 5%).
COMPARE = [
    # run key, figure, higher is better
    ('hookq_1ep', 'deliveries_per_s', True),
    ('hookq_1ep_defaults', 'deliveries_per_s', True),
    ('hookq_1ep_nolog', 'deliveries_per_s', True),
    ('hookq_1ep_hqb', 'deliveries_per_s', True),
    ('hookq_1000ep', 'deliveries_per_s', True),
    ('hookq_fast16', 'deliveries_per_s', True),
    ('hookq_hang4', 'deliveries_per_s', True),
    ('hookq_hot90', 'deliveries_per_s', True),
    ('hookq_fail10', 'steady_per_s', True),
    ('hookq_1ep', 'cmds_per_delivery', False),
    ('hookq_1ep_defaults', 'cmds_per_delivery', False),
    ('hookq_1ep', 'worker_cpu_s_per_10k', False),
    ('hookq_1ep', 'redis_cpu_s_per_10k', False),
]
COMPARE_BUDGET = 0.05  # the most an unordered throughput figure may lose


def compare(before, after):
    """Medians of each side's runs (comma-separated result files each, e.g. runs of
    the two builds alternated: A B A B), per COMPARE figure, after / before; a throughput
    figure that lost more than COMPARE_BUDGET is a MISS. Returns (text, misses)."""
    def runs_of(files):
        out = []
        for f in files.split(','):
            with open(f) as fh:
                out += json.load(fh)['runs']
        return out
    rb, ra = runs_of(before), runs_of(after)
    lines = ['', 'before: %s (%d runs)' % (before, len(rb)),
             'after:  %s (%d runs)' % (after, len(ra)), '',
             '%-44s %12s %12s %8s %6s' % ('figure (median of runs)', 'before', 'after',
                                          'after/b', '')]
    lines.append('-' * 86)
    misses = 0
    for key, fig, higher in COMPARE:
        b, a = median_of(rb, (key, fig)), median_of(ra, (key, fig))
        r = div(a, b)
        verdict = ''
        if r is not None and higher:
            ok = r >= 1 - COMPARE_BUDGET
            misses += not ok
            verdict = 'PASS' if ok else 'MISS'
        lines.append('%-44s %12s %12s %8s %6s' % ('%s %s' % (key, fig), fmt(b), fmt(a),
                                                  fmt(r), verdict))
    lines.append('')
    lines.append('throughput figures: after must be >= %.2f x before (PASS/MISS); the '
                 'others are shown for context' % (1 - COMPARE_BUDGET))
    return '\n'.join(lines) + '\n', misses


def render_api(res):
    """The hookq-api lines of the table (tests/bench/bench_api.py measured them)."""
    if res.get('error'):
        return '\nhookq-api: failed: %s\n' % res['error']
    out = '\nhookq-api (defaults, medians):\n'
    pe = res.get('post_events')
    if pe:
        m = pe.get('c32', {})
        out += ('  %-4s POST /v1/events keep-alive -c32: %s req/s, p50 %s ms, p99 %s ms '
                '(target >= 15,000/s, p99 <= 5 ms)\n'
                % ('PASS' if pe.get('pass') else 'MISS', '{:,.0f}'.format(m.get('req_per_s') or 0),
                   m.get('p50_ms'), m.get('p99_ms')))
    sf = res.get('sse_fanout')
    if sf:
        out += ('  %-4s 1,000 SSE clients x 100 events/s: hookq-api %.2f cores, every client got '
                'every event: %s (target < 0.5 core, all)\n'
                % ('PASS' if sf.get('pass') else 'MISS', sf.get('api_cpu_cores', 0),
                   'yes' if sf.get('complete') else 'NO'))
    return out


def main():
    if '--compare' in sys.argv:
        cp = argparse.ArgumentParser(description='compare two bench results (see README)')
        cp.add_argument('--compare', nargs=2, metavar=('BEFORE.json[,...]', 'AFTER.json[,...]'),
                        required=True)
        c = cp.parse_args()
        text, misses = compare(*c.compare)
        print(text)
        sys.exit(1 if misses else 0)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--runs', type=int)
    ap.add_argument('--out')
    ap.add_argument('--tools', required=True, help='dir with hqb-recv, hqb-load, curl-ceiling')
    ap.add_argument('--bin', default=os.path.join(SRC, 'build', 'bin'))
    ap.add_argument('--peers', default=os.environ.get('HOOKQ_BENCH_PEERS', '/work/shared/peers'))
    ap.add_argument('--n', type=int, help='events per throughput scenario')
    ap.add_argument('--no-aof', action='store_true')
    ap.add_argument('--perf', action='store_true',
                    help='after the runs, profile one hookq_1ep drain with perf record')
    ap.add_argument('--only', help='comma list of run keys to run (debugging): hookq_1ep,bullmq,wrk,...')
    ap.add_argument('--plots', action='store_true',
                    help='run the sweeps and draw docs/bench/*.png (a full run without --only '
                    'does this unless --no-plots)')
    ap.add_argument('--no-plots', action='store_true')
    ap.add_argument('--plots-dir', default=PLOTS_DIR, help='where the PNGs go (docs/bench)')
    a = ap.parse_args()
    a.runs = a.runs or (1 if a.quick else 3)
    a.n = a.n or (5000 if a.quick else 50000)
    a.bytes = 1024
    a.conc = 64
    a.endpoints = 1000
    a.peer_n = 5000 if a.quick else 20000
    a.promote_n = 50000 if a.quick else 1000000
    a.promote_timeout = 20 if a.quick else 90
    a.lat_seconds = 1 if a.quick else 5
    a.wrk_seconds = 1 if a.quick else 5
    a.ceiling_n = 10000 if a.quick else 100000
    a.inflight = 1000
    a.hold_ms = 300
    a.nginx_workers = 1
    a.hang_n = 2000 if a.quick else 4000
    a.hang_per = 20
    a.idle_seconds = 10 if a.quick else 60
    a.retry_n = 5 if a.quick else 20
    a.sweep_n = 2000 if a.quick else 10000
    a.rate = 1000 if a.quick else 2000  # hookq_rate: the endpoint's rate (/s) ...
    a.rate_seconds = 3 if a.quick else 5  # ... and how many seconds of it are pre-loaded
    a.out = a.out or os.path.join(HERE, 'results', 'latest.json')
    a.only = set(a.only.split(',')) if a.only else None
    # PNGs are written into docs/ only by a full run or on request, so --quick and --only
    # runs leave the tree clean
    a.plots = a.plots or (not a.quick and not a.only and not a.no_plots)
    a.plots_dir = os.path.abspath(a.plots_dir)
    a.bin = os.path.abspath(a.bin)
    a.tools = os.path.abspath(a.tools)

    tmp = tempfile.mkdtemp(prefix='hookq-bench-')
    meta = {'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
            'machine': '%d cores, load avg %s' % (os.cpu_count(),
                                                  ' '.join('%.2f' % x for x in os.getloadavg())),
            'git': subprocess.run(['git', '-C', SRC, 'rev-parse', '--short', 'HEAD'],
                                  capture_output=True, text=True).stdout.strip()}
    b = Bench(a, tmp)
    runs, aof, prof, sweep, drawn, api_res = [], None, None, None, None, None
    t0 = time.monotonic()
    try:
        for i in range(a.runs):
            runs.append(b.run_once(i))
        if not a.no_aof and (not a.only or 'aof' in a.only):
            aof = b.run_aof()
        try:
            sweep = b.sweeps(runs)
        except Exception as e:  # nor must a sweep
            log('sweeps failed:', repr(e))
            sweep = {'error': repr(e), 'n': a.sweep_n}
        if a.perf:
            prof = b.profile()
        api_keys = {'api_post_events': 'post_events', 'api_sse_fanout': 'sse_fanout'}
        if not a.only or a.only & set(api_keys):
            # hookq-api's two targets (issue 12), at its defaults, in the same run
            import bench_api
            try:
                api_res = bench_api.run_all(
                    a.bin, a.tools, runs=a.runs, seconds=3 if a.quick else 10,
                    only=None if not a.only else {v for k, v in api_keys.items() if k in a.only})
            except Exception as e:  # the worker's figures must survive an API failure
                log('api scenarios failed:', repr(e))
                api_res = {'error': repr(e)}
        meta['seconds'] = round(time.monotonic() - t0, 1)
        if a.plots:
            try:
                drawn = plots(runs, sweep, meta, a, tmp)
            except Exception as e:  # a plot must not cost the figures
                log('plots failed:', repr(e))
                drawn = {'error': repr(e)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = summarize(runs, aof, a)
    text = render(summary, a, meta)
    if sweep:
        text += render_sweep(sweep)
    if prof and prof.get('top'):
        text += '\nworker profile (perf, hookq_1ep, % of worker samples, inclusive / self):\n'
        text += ''.join('  %6.2f%% %6.2f%%  %s\n' % (r['children_pct'], r['self_pct'], r['symbol'])
                        for r in prof['top'][:30])
    elif prof:
        text += '\nworker profile: %s\n' % prof.get('error')
    if api_res:
        text += render_api(api_res)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, 'w') as f:
        json.dump({'meta': meta, 'params': {k: v for k, v in vars(a).items()
                                            if isinstance(v, (int, float, str, bool))},
                   'summary': summary, 'runs': runs, 'aof_run': aof, 'profile': prof,
                   'sweeps': sweep, 'plots': drawn, 'api': api_res,
                   'table_text': text}, f,
                  indent=1)
    log('wrote', a.out, 'in %.0f s' % meta['seconds'])


if __name__ == '__main__':
    main()
