"""Integration test harness: real redis-server, real HTTP receivers, real binaries.

Everything listens on 127.0.0.1 only, on ports the kernel picks as free, in temp
dirs removed afterwards. Nothing here mocks hookq: tests drive build/bin/hookq and
build/bin/hookq-worker and look at Redis and at what receivers got.

    import harness as h
    class T(h.TestCase):
        def test_x(self):
            with h.RedisServer() as rs, h.Receiver() as rcv:
                ...
    if __name__ == '__main__':
        h.main()
"""
import atexit
import base64
import glob
import hashlib
import hmac
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get('HOOKQ_SRC', os.path.dirname(os.path.dirname(HERE)))
BIN = os.environ.get('HOOKQ_BIN', os.path.join(SRC, 'build', 'bin'))
TESTS_BIN = os.environ.get('HOOKQ_TESTS_BIN', os.path.join(SRC, 'build', 'tests'))
REDIS_SERVER = shutil.which('redis-server') or '/usr/bin/redis-server'

# HOOKQ_VALGRIND=1 (tests/run.sh --valgrind) runs build/bin/hookq and hookq-worker under
# valgrind. Each process writes its own log; a log with errors or definite leaks fails the
# call that produced it (hookq(), Worker.stop()/kill()) and, as a backstop, the whole test
# process at exit. Still-reachable memory at exit is not an error.
VALGRIND = os.environ.get('HOOKQ_VALGRIND') == '1'
# Multiplier for waits (wait_until, Worker.stop, hookq's timeout): valgrind makes the
# binaries 10-50x slower, and a test must not fail on slowness alone.
SLOW = 10 if VALGRIND else 1
VG_EXIT = 97
_VG_DIR = tempfile.mkdtemp(prefix='hookq-vg-') if VALGRIND else None
_vg_bad = {}  # log path -> text, every log found with errors (printed once)


def _vg_wrap(argv):
    if not VALGRIND:
        return argv
    return ['valgrind', '--quiet', '--error-exitcode=%d' % VG_EXIT, '--leak-check=full',
            '--errors-for-leak-kinds=definite', '--show-leak-kinds=definite',
            '--track-origins=no', '--log-file=' + os.path.join(_VG_DIR, 'vg-%p.log')] + argv


_VG_ERR = re.compile(r'ERROR SUMMARY: ([1-9][0-9,]*) errors'
                     r'|definitely lost: ([1-9][0-9,]*) bytes|are definitely lost'
                     r'|Invalid (read|write|free)|Conditional jump|uninitialised'
                     r'|Syscall param|Mismatched free|Source and destination overlap'
                     r'|Process terminating with default action')


def _vg_report(path):
    """If the valgrind log at path shows an error, print it (once) and return its text."""
    if path in _vg_bad:
        return _vg_bad[path]
    try:
        with open(path, errors='replace') as f:
            text = f.read()
    except OSError:
        return None
    if not _VG_ERR.search(text):
        return None
    _vg_bad[path] = text
    sys.stderr.write('\n==== VALGRIND ERRORS (%s) ====\n%s==== end %s ====\n'
                     % (os.path.basename(path), text, os.path.basename(path)))
    sys.stderr.flush()
    return text


def _vg_check(pid, what):
    """Raise AssertionError if process pid's valgrind log has errors."""
    if not VALGRIND or pid is None:
        return
    text = _vg_report(os.path.join(_VG_DIR, 'vg-%d.log' % pid))
    if text is not None:
        raise AssertionError('valgrind errors in %s (pid %d):\n%s' % (what, pid, text))


@atexit.register
def _vg_atexit():
    if not VALGRIND:
        return
    # Backstop for processes whose check was skipped (e.g. a test that failed first):
    # every log is looked at, and any error fails the test process.
    for path in sorted(glob.glob(os.path.join(_VG_DIR, 'vg-*.log'))):
        _vg_report(path)
    n = len(glob.glob(os.path.join(_VG_DIR, 'vg-*.log')))
    shutil.rmtree(_VG_DIR, ignore_errors=True)
    if _vg_bad:
        sys.stderr.write('valgrind: %d of %d processes had errors (logs above)\n'
                         % (len(_vg_bad), n))
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.write('valgrind: %d processes, no errors\n' % n)


def free_port():
    """A port the kernel considers free on 127.0.0.1 (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=10.0, interval=0.05):
    """Poll pred() until it is truthy or timeout seconds (times SLOW) pass; returns the
    last value."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---------------------------------------------------------------- RESP client

class RedisError(Exception):
    pass


class Resp:
    """A minimal RESP2 client: enough for tests to read and write keys directly."""

    def __init__(self, port, host='127.0.0.1', password=None, timeout=10.0):
        self.addr = (host, port)
        self.timeout = timeout
        self.password = password
        self.sock = None
        self.buf = b''

    def connect(self):
        self.close()
        self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        self.buf = b''
        if self.password:
            self.call('AUTH', self.password)

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    @staticmethod
    def _enc(a):
        if isinstance(a, bytes):
            return a
        return str(a).encode()

    def _line(self):
        while b'\r\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('redis closed the connection')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(max(65536, n + 2 - len(self.buf)))
            if not chunk:
                raise ConnectionError('redis closed the connection')
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self, raw):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b'+':
            return rest.decode()
        if t == b'-':
            return RedisError(rest.decode())
        if t == b':':
            return int(rest)
        if t == b'$':
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            if raw:
                return data
            try:
                return data.decode()
            except UnicodeDecodeError:
                return data
        if t == b'*':
            n = int(rest)
            if n < 0:
                return None
            return [self._reply(raw) for _ in range(n)]
        raise RedisError('bad RESP type %r' % t)

    def call(self, *args, raw=False):
        """Send one command; returns the decoded reply (str/int/list/None, bytes if not
        UTF-8 or raw=True). Error replies raise RedisError."""
        if self.sock is None:
            self.connect()
        msg = b'*%d\r\n' % len(args)
        for a in args:
            b = self._enc(a)
            msg += b'$%d\r\n%s\r\n' % (len(b), b)
        try:
            self.sock.sendall(msg)
            r = self._reply(raw)
        except (OSError, ConnectionError):
            self.close()
            raise
        if isinstance(r, RedisError):
            raise r
        return r

    def pipeline(self, cmds, raw=False):
        """Send many commands in one write; returns the replies (errors as RedisError
        objects, not raised)."""
        if self.sock is None:
            self.connect()
        out = b''
        for args in cmds:
            out += b'*%d\r\n' % len(args)
            for a in args:
                b = self._enc(a)
                out += b'$%d\r\n%s\r\n' % (len(b), b)
        self.sock.sendall(out)
        return [self._reply(raw) for _ in cmds]


# ---------------------------------------------------------------- redis-server

class RedisServer:
    """A private redis-server on a free loopback port in a temp dir."""

    def __init__(self, appendonly=False, port=None, args=(), password=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix='hookq-redis-')
        self.appendonly = appendonly
        self.extra = list(args)
        self.password = password
        self.proc = None
        self.client = Resp(self.port, password=password)

    @property
    def url(self):
        if self.password:
            return 'redis://:%s@127.0.0.1:%d/0' % (self.password, self.port)
        return 'redis://127.0.0.1:%d/0' % self.port

    def start(self):
        args = [REDIS_SERVER, '--port', str(self.port), '--bind', '127.0.0.1',
                '--dir', self.dir, '--save', '', '--daemonize', 'no',
                '--logfile', os.path.join(self.dir, 'redis.log'),
                '--appendonly', 'yes' if self.appendonly else 'no']
        if self.appendonly:
            args += ['--appendfsync', 'everysec']
        if self.password:
            args += ['--requirepass', self.password]
        args += self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                self.client.connect()
                return self.client.call('PING') == 'PONG'
            except (OSError, ConnectionError, RedisError):
                return False
        if not wait_until(up, 10):
            raise RuntimeError('redis-server did not start on port %d' % self.port)
        return self

    def call(self, *args, raw=False):
        try:
            return self.client.call(*args, raw=raw)
        except (OSError, ConnectionError):
            self.client.connect()
            return self.client.call(*args, raw=raw)

    def pipeline(self, cmds, raw=False):
        return self.client.pipeline(cmds, raw=raw)

    def kill(self):
        """SIGKILL, like a crash; data since the last fsync may be lost."""
        self.client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        self.client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- HTTP receiver

class Request:
    def __init__(self, path, headers, body, t):
        self.path = path
        self.headers = headers
        self.body = body
        self.t = t

    def __repr__(self):
        return 'Request(%s, %s, %r)' % (self.path, self.headers.get('webhook-id'), self.body[:80])


class Receiver:
    """A threaded HTTP/1.1 (keep-alive) server on 127.0.0.1 that records every request.

    handler(req, nth) is called with the Request and how many requests this path has
    had before it (0-based); it returns (status, headers, body) or None for 204, and may
    sleep to play a slow receiver."""

    def __init__(self, handler=None):
        self.handler = handler
        self.requests = []
        self.lock = threading.Lock()
        self.counts = {}
        self.connections = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def setup(self):
                super().setup()
                with outer.lock:
                    outer.connections += 1

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get('content-length') or 0)
                body = self.rfile.read(n) if n else b''
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                              body, time.monotonic())
                with outer.lock:
                    nth = outer.counts.get(self.path, 0)
                    outer.counts[self.path] = nth + 1
                    outer.requests.append(req)
                res = outer.handler(req, nth) if outer.handler else None
                status, headers, rbody = res if res else (204, {}, b'')
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if status != 204:
                    self.send_header('Content-Length', str(len(rbody)))
                self.end_headers()
                if status != 204 and rbody:
                    self.wfile.write(rbody)

            do_PUT = do_POST
            do_GET = do_POST

        class Server(http.server.ThreadingHTTPServer):
            # A worker opens dozens of connections at once; the default backlog of 5
            # would make connects time out under load.
            request_queue_size = 256

            def handle_error(self, request, address):
                pass  # workers killed on purpose reset connections: expected, not noise

        self.server = Server(('127.0.0.1', 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path='/hook'):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def for_path(self, path):
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, n, timeout=10.0, path=None):
        def enough():
            with self.lock:
                reqs = self.requests if path is None else [r for r in self.requests if r.path == path]
                return len(reqs) >= n
        return wait_until(enough, timeout)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- binaries

def _env(rs, env):
    e = dict(os.environ)
    for k in list(e):
        # The binaries reject unknown HOOKQ_* variables (a typo must not pass
        # silently), so the harness's own HOOKQ_BIN etc. are not passed on.
        if k.startswith('HOOKQ_'):
            del e[k]
    if rs is not None:
        e['HOOKQ_REDIS_URL'] = rs.url
    if env:
        e.update(env)
    return e


def hookq(rs, *args, input=None, env=None, timeout=60):
    """Run build/bin/hookq ARGS against rs (HOOKQ_REDIS_URL); returns CompletedProcess
    with text stdout/stderr. Never raises on a non-zero exit."""
    argv = _vg_wrap([os.path.join(BIN, 'hookq')] + [str(a) for a in args])
    # Popen rather than run: the pid names the valgrind log to check.
    with subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else None,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=_env(rs, env), cwd=tempfile.gettempdir()) as p:
        try:
            out, err = p.communicate(input, timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise
    _vg_check(p.pid, 'hookq ' + ' '.join(str(a) for a in args))
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


class Worker:
    """build/bin/hookq-worker as a subprocess; its stderr goes to a log file."""

    def __init__(self, rs, env=None, name=None):
        self.rs = rs
        e = {'HOOKQ_SECURITY_ALLOW_PRIVATE_NETWORKS': 'true', 'HOOKQ_LOG_LEVEL': 'debug'}
        if name:
            e['HOOKQ_WORKER_NAME'] = name
        e.update(env or {})
        self.env = _env(rs, e)
        self.logf = tempfile.NamedTemporaryFile(prefix='hookq-worker-', suffix='.log', delete=False)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(_vg_wrap([os.path.join(BIN, 'hookq-worker')]), env=self.env,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=tempfile.gettempdir())
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Send sig and wait (timeout times SLOW); returns the exit code (None if it had
        to be killed). Under valgrind, raises if the worker's log shows errors."""
        if not self.alive():
            self._vg_check()
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self._vg_check()
        return rc

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def _vg_check(self):
        # Once per process: a test that already failed on it need not fail again here.
        if self.proc is not None and not getattr(self, '_vg_checked', False):
            self._vg_checked = True
            _vg_check(self.proc.pid, 'hookq-worker')

    def log(self):
        with open(self.logf.name, 'r', errors='replace') as f:
            return f.read()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
        try:
            os.unlink(self.logf.name)
        except OSError:
            pass
        if exc[0] is None:
            self._vg_check()


# ---------------------------------------------------------------- signatures

def sw_sign(secret, msg_id, ts, body):
    """Standard Webhooks v1 signature, computed here independently of hookq's C code."""
    key = base64.b64decode(secret[len('whsec_'):] if secret.startswith('whsec_') else secret)
    if isinstance(body, str):
        body = body.encode()
    mac = hmac.new(key, b'%s.%s.%s' % (msg_id.encode(), str(ts).encode(), body), hashlib.sha256)
    return 'v1,' + base64.b64encode(mac.digest()).decode()


def sw_verify(secret, headers, body):
    """True if any v1 signature in headers['webhook-signature'] matches secret."""
    sig = sw_sign(secret, headers['webhook-id'], headers['webhook-timestamp'], body)
    return any(hmac.compare_digest(sig, s) for s in headers.get('webhook-signature', '').split())


# ---------------------------------------------------------------- tests

class TestCase(unittest.TestCase):
    maxDiff = None

    def assertEventually(self, pred, timeout=10.0, msg=None):
        self.assertTrue(wait_until(pred, timeout), msg or 'condition not met within %ss' % timeout)


class RedisTestCase(TestCase):
    """One redis-server for the whole class (self.rs), emptied before each test: for
    tests that only need Redis, not a fresh process each."""

    @classmethod
    def setUpClass(cls):
        cls.rs = RedisServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.rs.__exit__(None, None, None)

    def setUp(self):
        self.rs.call('FLUSHALL')


def xrange_dicts(rs, key, start='-', end='+'):
    """XRANGE as a list of (id, {field: value})."""
    out = []
    for eid, fields in rs.call('XRANGE', key, start, end) or []:
        out.append((eid, dict(zip(fields[0::2], fields[1::2]))))
    return out


def main():
    unittest.main(verbosity=2)
