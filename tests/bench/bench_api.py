#!/usr/bin/env python3
"""hookq-api benchmark: two scenarios, each at the API's default settings on a private
redis-server, each printing a PASS/MISS line against its target and returning a dict of
figures (medians over the runs).

  post_events  wrk (keep-alive, -t2) POSTs {"type":"bench.created","data":{~100 bytes}}
               to /v1/events for N seconds at -c32 and -c64; target >= 15,000 req/s and
               p99 <= 5 ms at -c32 (wrk --latency percentiles).
  sse_fanout   1,000 SSE clients (hqb-sse: one epoll process, streams spread over
               127.0.0.2..9) while hqb-load XADDs 100 events/s for 10 s; target: the
               hookq-api process under 0.5 core (utime+stime from /proc/PID/stat over the
               publishing window and the drain after it) and every client got every event
               in order.

Alone:   python3 tests/bench/bench_api.py [--only post_events,sse_fanout] [--runs N]
                 [--seconds S] [--bin DIR] [--tools DIR] [--out FILE.json]
It builds hookq-api with CMAKE_BUILD_TYPE=RelWithDebInfo in build-bench/ (unless --bin)
and compiles hqb-sse and hqb-load into a temp dir (unless --tools).
From bench.py:  import bench_api; bench_api.run_all(bin_dir, tools_dir, runs=3)
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, 'tests', 'integration'))
import harness as h  # noqa: E402

ADMIN = 'bench-admin-key-0123456789'
EVENTS = 'hookq:{q}:events'
CLK = os.sysconf('SC_CLK_TCK')

TARGETS = {
    'post_events': 'POST /v1/events, wrk -t2 -c32 keep-alive: >= 15,000 req/s and p99 <= 5 ms',
    'sse_fanout': '1,000 SSE clients x 100 events/s: hookq-api < 0.5 core, every event to every '
                  'client',
}


def log(*a):
    print('[bench-api %s]' % time.strftime('%H:%M:%S'), *a, file=sys.stderr, flush=True)


def proc_cpu(pid):
    """utime+stime of pid in seconds (None if gone)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            parts = f.read().rsplit(')', 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / CLK
    except (OSError, IndexError, ValueError):
        return None


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Api:
    """hookq-api at its defaults: only where to listen, Redis and a key are set."""

    def __init__(self, bin_dir, rs, env=None):
        self.bin = os.path.join(bin_dir, 'hookq-api')
        self.env = h._env(rs, dict({'HOOKQ_API_LISTEN': '127.0.0.1:0',
                                    'HOOKQ_API_ADMIN_KEYS': ADMIN}, **(env or {})))
        self.logf = tempfile.NamedTemporaryFile(prefix='bench-api-', suffix='.log', delete=False)
        self.proc = None
        self.port = None

    def start(self):
        self.proc = subprocess.Popen([self.bin], env=self.env, stdout=subprocess.PIPE,
                                     stderr=self.logf, text=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if 'listening on port' in line:
                self.port = int(line.split()[-1])
                return self
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError('hookq-api did not start: %s' % self.log()[-2000:])

    def log(self):
        with open(self.logf.name, errors='replace') as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self.logf.close()
        os.unlink(self.logf.name)


# ---------------------------------------------------------------- post_events

WRK_LUA = '''wrk.method = "POST"
wrk.body = '{"type":"bench.created","data":{"order":12345,"customer":"cus_0123456789","pad":"%s"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
'''


def _ms(num, unit):
    return float(num) * {'us': 0.001, 'ms': 1.0, 's': 1000.0, 'm': 60000.0}[unit]


def parse_wrk(out):
    """Requests/sec, the --latency percentiles (ms) and the non-2xx count of wrk's text."""
    res = {}
    m = re.search(r'Requests/sec:\s+([\d.]+)', out)
    if m:
        res['req_per_s'] = float(m.group(1))
    for pct, num, unit in re.findall(r'^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$', out, re.M):
        res['p%s_ms' % pct] = round(_ms(num, unit), 3)
    m = re.search(r'(\d+) requests in', out)
    if m:
        res['requests'] = int(m.group(1))
    m = re.search(r'Non-2xx or 3xx responses:\s+(\d+)', out)
    res['non_2xx'] = int(m.group(1)) if m else 0
    m = re.search(r'Socket errors:(.*)', out)
    if m:
        res['socket_errors'] = m.group(1).strip()
    return res


def post_events(bin_dir, tmp, seconds=10, runs=3, conns=(32, 64)):
    """wrk against POST /v1/events at the defaults. Returns {'c32': {...}, 'c64': {...},
    'status': what one request got, 'pass': bool}."""
    lua = os.path.join(tmp, 'post_events.lua')
    with open(lua, 'w') as f:
        # data is about 100 bytes: {"order":...,"customer":...,"pad":"..."}
        f.write(WRK_LUA % ('x' * 48, ADMIN))
    out = {'seconds': seconds, 'runs': runs}
    rs = h.RedisServer().start()
    api = Api(bin_dir, rs).start()
    try:
        st = subprocess.run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST',
                             '-H', 'Authorization: Bearer ' + ADMIN, '-H',
                             'Content-Type: application/json', '-d',
                             '{"type":"bench.created","data":{"x":1}}',
                             'http://127.0.0.1:%d/v1/events' % api.port],
                            capture_output=True, text=True, timeout=10).stdout
        out['status'] = int(st) if st.isdigit() else st
        if out['status'] != 201 and out['status'] != 202:
            log('post_events: POST /v1/events answers %s (not written yet?): measuring that'
                % out['status'])
        for c in conns:
            rows = []
            for i in range(runs):
                rs.call('DEL', EVENTS)  # 10 s at 15k/s is 150k entries: start each run empty
                cpu0, t0 = proc_cpu(api.proc.pid), time.monotonic()
                rcpu0 = proc_cpu(rs.proc.pid)
                p = subprocess.run(['wrk', '-t2', '-c%d' % c, '-d%ds' % seconds, '--latency',
                                    '-s', lua, 'http://127.0.0.1:%d/v1/events' % api.port],
                                   capture_output=True, text=True, timeout=seconds + 60)
                cpu1, t1 = proc_cpu(api.proc.pid), time.monotonic()
                rcpu1 = proc_cpu(rs.proc.pid)
                r = parse_wrk(p.stdout)
                if 'req_per_s' not in r:
                    raise RuntimeError('wrk: %s %s' % (p.stdout[-500:], p.stderr[-500:]))
                r['api_cpu_cores'] = round((cpu1 - cpu0) / (t1 - t0), 3)
                r['redis_cpu_cores'] = round((rcpu1 - rcpu0) / (t1 - t0), 3)
                r['events_written'] = rs.call('XLEN', EVENTS)
                log('post_events -c%d run %d: %.0f req/s, p99 %s ms, non-2xx %d, api %.2f cores, '
                    'redis %.2f cores' % (c, i + 1, r['req_per_s'], r.get('p99_ms'), r['non_2xx'],
                                          r['api_cpu_cores'], r['redis_cpu_cores']))
                rows.append(r)
            out['c%d' % c] = {k: median([r.get(k) for r in rows]) for k in
                              ('req_per_s', 'p50_ms', 'p90_ms', 'p99_ms', 'api_cpu_cores',
                               'redis_cpu_cores', 'events_written', 'non_2xx')}
            out['c%d' % c]['all_runs'] = rows
    finally:
        api.stop()
        rs.stop()
        shutil.rmtree(rs.dir, ignore_errors=True)
    main = out.get('c%d' % conns[0], {})
    ok = (main.get('req_per_s') or 0) >= 15000 and (main.get('p99_ms') or 1e9) <= 5.0 and \
        out.get('status') in (201, 202) and not main.get('non_2xx')
    out['pass'] = ok
    print('%s  post_events: %s req/s, p99 %s ms at -c%d (-c%d: %s req/s, p99 %s ms); '
          'POST answered %s  [target %s]'
          % ('PASS' if ok else 'MISS', fmt(main.get('req_per_s')), main.get('p99_ms'),
             conns[0], conns[-1], fmt(out.get('c%d' % conns[-1], {}).get('req_per_s')),
             out.get('c%d' % conns[-1], {}).get('p99_ms'), out.get('status'),
             TARGETS['post_events']), flush=True)
    return out


# ---------------------------------------------------------------- sse_fanout

def sse_fanout(bin_dir, tools, seconds=10, runs=3, clients=1000, rate=100, nbytes=200):
    """clients SSE streams, rate events/s for seconds. Returns the medians and each run."""
    limit = raise_fd_limit()
    if limit < clients + 100:
        raise RuntimeError('fd limit %d is too low for %d clients' % (limit, clients))
    rows = []
    expect = int(rate * seconds)
    for i in range(runs):
        rs = h.RedisServer().start()
        api = Api(bin_dir, rs).start()
        sse = None
        try:
            sse = subprocess.Popen([os.path.join(tools, 'hqb-sse'), str(api.port), str(clients),
                                    str(seconds + 30), ADMIN, str(expect), '8'],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            line = sse.stdout.readline()
            if not line.startswith('READY'):
                raise RuntimeError('hqb-sse: %r %s' % (line, sse.stderr.read()[-500:]))
            ready = int(line.split()[1])
            time.sleep(1.0)  # let the connect burst settle out of the window
            cpu_idle0, t_idle0 = proc_cpu(api.proc.pid), time.monotonic()
            time.sleep(1.0)
            idle = (proc_cpu(api.proc.pid) - cpu_idle0) / (time.monotonic() - t_idle0)
            cpu0, t0 = proc_cpu(api.proc.pid), time.monotonic()
            pub = subprocess.run([os.path.join(tools, 'hqb-load'), 'pub', str(rs.port), EVENTS,
                                  str(rate), str(seconds), 'bench.sse', str(nbytes)],
                                 capture_output=True, text=True, timeout=seconds + 60)
            if pub.returncode != 0:
                raise RuntimeError('hqb-load: %s' % pub.stderr)
            res_line = sse.stdout.readline()  # hqb-sse ends when every stream has them all
            cpu1, t1 = proc_cpu(api.proc.pid), time.monotonic()
            res = json.loads(res_line)
            sse.wait(10)
            res.update({'ready': ready, 'api_cpu_cores': round((cpu1 - cpu0) / (t1 - t0), 3),
                        'api_idle_cores': round(idle, 4), 'window_s': round(t1 - t0, 2),
                        'api_rss_mib': None, 'expected': expect})
            try:
                with open('/proc/%d/status' % api.proc.pid) as f:
                    m = re.search(r'VmHWM:\s+(\d+)', f.read())
                    res['api_rss_mib'] = round(int(m.group(1)) / 1024, 1) if m else None
            except OSError:
                pass
            log('sse_fanout run %d: api %.3f cores over %.1f s, min %d max %d of %d, '
                'out of order %d, errors %d, latency p50 %s p99 %s ms'
                % (i + 1, res['api_cpu_cores'], res['window_s'], res['min'], res['max'], expect,
                   res['out_of_order'], res['errors'], res['latency_p50_ms'],
                   res['latency_p99_ms']))
            rows.append(res)
        finally:
            if sse and sse.poll() is None:
                sse.kill()
                sse.wait()
            if sse:
                sse.stdout.close()
                sse.stderr.close()
            api.stop()
            rs.stop()
            shutil.rmtree(rs.dir, ignore_errors=True)
    out = {k: median([r.get(k) for r in rows]) for k in
           ('api_cpu_cores', 'api_idle_cores', 'latency_p50_ms', 'latency_p99_ms',
            'api_rss_mib')}
    out.update({'clients': clients, 'rate': rate, 'seconds': seconds, 'expected': expect,
                'min_received': min(r['min'] for r in rows),
                'max_received': max(r['max'] for r in rows),
                'out_of_order': sum(r['out_of_order'] for r in rows),
                'errors': sum(r['errors'] for r in rows), 'all_runs': rows})
    complete = out['min_received'] == expect and out['max_received'] == expect and \
        not out['out_of_order'] and not out['errors'] and \
        all(r['ready'] == clients for r in rows)
    ok = complete and out['api_cpu_cores'] < 0.5
    out['complete'] = complete
    out['pass'] = ok
    print('%s  sse_fanout: hookq-api %.3f cores (median of %d), every client %s of %d '
          '(min %d, max %d), out of order %d, latency p50 %s ms p99 %s ms  [target %s]'
          % ('PASS' if ok else 'MISS', out['api_cpu_cores'], len(rows),
             'got all' if complete else 'did NOT get all', expect, out['min_received'],
             out['max_received'], out['out_of_order'], out['latency_p50_ms'],
             out['latency_p99_ms'], TARGETS['sse_fanout']), flush=True)
    return out


def fmt(v):
    return '-' if v is None else '{:,.0f}'.format(v)


def run_all(bin_dir, tools, runs=3, seconds=10, only=None):
    """Every scenario (or those in only); returns {name: figures}. tools may lack
    hqb-sse (bench.py's run.sh builds only its own tools): it is compiled there then."""
    res = {}
    if not all(os.path.exists(os.path.join(tools, t)) for t in ('hqb-sse', 'hqb-load')):
        build_tools_only(tools)
    tmp = tempfile.mkdtemp(prefix='bench-api-')
    try:
        if not only or 'post_events' in only:
            res['post_events'] = post_events(bin_dir, tmp, seconds=seconds, runs=runs)
        if not only or 'sse_fanout' in only:
            res['sse_fanout'] = sse_fanout(bin_dir, tools, seconds=seconds, runs=runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def build(tools):
    bdir = os.path.join(SRC, 'build-bench')
    if not os.path.exists(os.path.join(bdir, 'CMakeCache.txt')):
        subprocess.run(['cmake', '-S', SRC, '-B', bdir, '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
                        '-DHOOKQ_TESTS=OFF'], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(['cmake', '--build', bdir, '-j2', '--target', 'hookq-api'], check=True,
                   stdout=subprocess.DEVNULL)
    build_tools_only(tools)
    return os.path.join(bdir, 'bin')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--only', help='post_events,sse_fanout')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--seconds', type=int, default=10)
    ap.add_argument('--bin', help='dir with hookq-api (default: build build-bench/)')
    ap.add_argument('--tools', help='dir with hqb-sse and hqb-load (default: compile them)')
    ap.add_argument('--out', help='write the figures here as JSON')
    a = ap.parse_args()
    for tool in ('redis-server', 'wrk', 'cc', 'curl'):
        if not shutil.which(tool):
            sys.exit('bench_api: %s not found' % tool)
    tools = a.tools or tempfile.mkdtemp(prefix='bench-api-tools-')
    try:
        bin_dir = a.bin if a.bin else build(tools)
        res = run_all(os.path.abspath(bin_dir), os.path.abspath(tools), runs=a.runs,
                      seconds=a.seconds, only=set(a.only.split(',')) if a.only else None)
    finally:
        if not a.tools:
            shutil.rmtree(tools, ignore_errors=True)
    if a.out:
        with open(a.out, 'w') as f:
            json.dump(res, f, indent=1)
    sys.exit(0 if all(r.get('pass') for r in res.values()) else 1)


def build_tools_only(tools):
    subprocess.run(['cc', '-O2', '-Wall', '-o', os.path.join(tools, 'hqb-sse'),
                    os.path.join(HERE, 'hqb-sse.c')], check=True)
    subprocess.run(['cc', '-O2', '-Wall', '-o', os.path.join(tools, 'hqb-load'),
                    os.path.join(HERE, 'hqb-load.c'), '-lhiredis'], check=True)


if __name__ == '__main__':
    main()
