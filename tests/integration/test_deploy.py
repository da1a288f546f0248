"""Deployment pieces, run for real.

- deploy/docker-entrypoint.sh, run directly (no container engine): configuration from
  the environment only, validated before the worker starts; the worker is exec'd so it
  gets SIGTERM itself and exits 0.
- build/bin/hq-receiver, the receiver of the quick start and the benchmark.
- deploy/quickstart.sh end to end (without installing packages).
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import harness as h

ENTRYPOINT = os.path.join(h.SRC, 'deploy', 'docker-entrypoint.sh')
EXAMPLE = os.path.join(h.SRC, 'deploy', 'hookq.example.yaml')


def clean_env(rs, extra=None):
    """The environment a container would have: PATH with the binaries, no HOOKQ_* except
    what the test sets (the harness's own HOOKQ_BIN etc. are not hookq config keys)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('HOOKQ_')}
    env['PATH'] = h.BIN + os.pathsep + env.get('PATH', '/usr/bin:/bin')
    if rs is not None:
        env['HOOKQ_REDIS_URL'] = rs.url
    env.update(extra or {})
    return env


def example_keys():
    """"section.key" names set in deploy/hookq.example.yaml (two-level YAML, read without
    a YAML library so the test needs nothing beyond python3)."""
    keys, section = set(), None
    with open(EXAMPLE) as f:
        for line in f:
            body = line.split('#', 1)[0].rstrip()
            if not body.strip() or ':' not in body:
                continue
            name = body.split(':', 1)[0]
            if not name.startswith(' '):
                section = name.strip()
            elif section:
                keys.add(section + '.' + name.strip())
    return keys


def run_entrypoint(env, *args, timeout=30):
    return subprocess.run(['sh', ENTRYPOINT] + list(args), env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=tempfile.gettempdir(),
                          stdin=subprocess.DEVNULL)


def worker_is_up(rs):
    """The worker has connected to Redis and created its consumer groups."""
    try:
        groups = rs.call('XINFO', 'GROUPS', 'hookq:{q}:events')
    except h.RedisError:
        return False
    return any('fanout' in g for g in groups)


class EntrypointTest(h.TestCase):
    def test_bad_env_value_exits_nonzero_naming_the_variable(self):
        with h.RedisServer() as rs:
            for var, value in [('HOOKQ_DELIVERY_TIMEOUT', 'soon'),
                               ('HOOKQ_DELIVERY_CONCURRENCY', '-3'),
                               ('HOOKQ_RETRY_SCHEDULE', '30s nope'),
                               ('HOOKQ_LOG_LEVEL', 'loud'),
                               ('HOOKQ_NO_SUCH_KEY', '1')]:
                with self.subTest(var=var):
                    r = run_entrypoint(clean_env(rs, {var: value}))
                    self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
                    self.assertIn(var, r.stderr)
                    self.assertIn('configuration is invalid', r.stderr)
            # Nothing was started: no worker created the consumer groups.
            self.assertFalse(worker_is_up(rs))

    def test_api_mode_checks_config_then_serves(self):
        with h.RedisServer() as rs:
            r = run_entrypoint(clean_env(rs, {'HOOKQ_API_LISTEN': 'nowhere'}), 'api')
            self.assertNotEqual(r.returncode, 0)
            self.assertIn('HOOKQ_API_LISTEN', r.stderr)
            self.assertIn('not starting the api', r.stderr)
            port = h.free_port()
            env = clean_env(rs, {'HOOKQ_API_LISTEN': '127.0.0.1:%d' % port,
                                 'HOOKQ_API_ADMIN_KEYS': 'entrypoint-admin-key-012345'})
            p = subprocess.Popen(['sh', ENTRYPOINT, 'api'], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, cwd=tempfile.gettempdir())
            try:
                def up():
                    try:
                        with socket.create_connection(('127.0.0.1', port), timeout=1) as s:
                            s.sendall(b'GET /v1/health HTTP/1.0\r\n\r\n')
                            return b'"status":"ok"' in s.recv(4096)
                    except OSError:
                        return False
                self.assertTrue(h.wait_until(up, 10 * h.SLOW))
                p.terminate()  # exec'd: the signal reaches hookq-api itself
                self.assertEqual(p.wait(15 * h.SLOW), 0)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()

    def test_bad_redis_url_is_rejected(self):
        r = run_entrypoint(clean_env(None, {'HOOKQ_REDIS_URL': 'http://127.0.0.1:1/'}))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('HOOKQ_REDIS_URL', r.stderr)

    def test_good_env_starts_worker_which_exits_0_on_sigterm(self):
        with h.RedisServer() as rs:
            env = clean_env(rs, {'HOOKQ_LOG_LEVEL': 'debug',
                                 'HOOKQ_DELIVERY_SHUTDOWN_GRACE': '2s',
                                 'HOOKQ_WORKER_NAME': 'entrypoint-test'})
            with tempfile.TemporaryFile() as log:
                p = subprocess.Popen(['sh', ENTRYPOINT], env=env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=tempfile.gettempdir())
                try:
                    up = h.wait_until(lambda: worker_is_up(rs) or p.poll() is not None, 20)
                    log.seek(0)
                    out = log.read().decode(errors='replace')
                    self.assertIsNone(p.poll(), 'worker exited early: ' + out)
                    self.assertTrue(up and worker_is_up(rs), 'worker never came up: ' + out)
                    # The env config reached the worker: its log lines carry the name
                    # given by HOOKQ_WORKER_NAME.
                    self.assertIn('worker=entrypoint-test', out)
                    # exec, not a child: the process we started is the worker itself, so
                    # an orchestrator's SIGTERM reaches it.
                    with open('/proc/%d/comm' % p.pid) as f:
                        self.assertEqual(f.read().strip(), 'hookq-worker')
                    p.send_signal(signal.SIGTERM)
                    rc = p.wait(20)
                finally:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
                log.seek(0)
                self.assertEqual(rc, 0, log.read().decode(errors='replace'))

    def test_cli_commands_pass_through(self):
        with h.RedisServer() as rs:
            env = clean_env(rs)
            r = run_entrypoint(env, 'config', 'check', EXAMPLE)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('redis.url', r.stdout)
            r2 = run_entrypoint(env, 'hookq', 'version')
            self.assertEqual(r2.returncode, 0, r2.stderr)
            self.assertIn('hookq', r2.stdout)
            # A bad value reaches the CLI too, and is reported there.
            r3 = run_entrypoint(clean_env(rs, {'HOOKQ_DELIVERY_TIMEOUT': 'soon'}),
                                'config', 'check', EXAMPLE)
            self.assertNotEqual(r3.returncode, 0)
            self.assertIn('HOOKQ_DELIVERY_TIMEOUT', r3.stdout + r3.stderr)

    def test_other_commands_are_executed(self):
        r = run_entrypoint(clean_env(None), 'sh', '-c', 'echo from-sh; exit 7')
        self.assertEqual(r.returncode, 7)
        self.assertEqual(r.stdout.strip(), 'from-sh')

    def test_redis_password_is_not_printed(self):
        with h.RedisServer(password='s3cret-pass-word') as rs:
            r = run_entrypoint(clean_env(rs), 'config', 'check', os.devnull)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('redis.url', r.stdout)
            self.assertNotIn('s3cret-pass-word', r.stdout + r.stderr)

    def test_example_config_is_valid(self):
        # deploy/hookq.example.yaml lists every key; the real parser must accept it.
        with h.RedisServer() as rs:
            r = run_entrypoint(clean_env(rs), 'config', 'check', EXAMPLE)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # Every key the parser knows is in the example (config check prints them all).
            shown = {line.split(':', 1)[0].strip() for line in r.stdout.splitlines()
                     if ':' in line}
            self.assertGreater(len(shown), 30)
            example = example_keys()
            self.assertEqual(sorted(shown - example), [], 'keys missing from the example')
            self.assertEqual(sorted(example - shown), [], 'example keys hookq does not know')

    def test_worker_uses_hookq_config_file(self):
        # The entrypoint validates the file the worker will read ($HOOKQ_CONFIG).
        with h.RedisServer() as rs, tempfile.NamedTemporaryFile('w', suffix='.yaml') as f:
            f.write('delivery:\n  timeout: 30s\n  visibility_timeout: 5s\n')
            f.flush()
            r = run_entrypoint(clean_env(rs, {'HOOKQ_CONFIG': f.name}))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn('visibility_timeout', r.stderr)
            self.assertFalse(worker_is_up(rs))


class Receiver:
    """build/bin/hq-receiver ARGS on a free port (--port 0)."""

    def __init__(self, *args):
        self.args = [os.path.join(h.BIN, 'hq-receiver'), '--port', '0'] + list(args)

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, stdin=subprocess.DEVNULL)
        first = self.proc.stdout.readline().strip()
        if 'listening on 127.0.0.1:' not in first:
            self.proc.kill()
            raise RuntimeError('hq-receiver did not start: %r' % first)
        self.port = int(first.rsplit(':', 1)[1])
        return self

    def post(self, body, headers=None):
        req = urllib.request.Request('http://127.0.0.1:%d/hook' % self.port, data=body.encode(),
                                     headers=headers or {}, method='POST')
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def stop(self):
        """SIGTERM; returns (exit code, stdout lines after the banner, stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, out.splitlines(), err

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'


def signed(body, msg_id='msg_1', ts=None, secret=SECRET):
    ts = int(time.time()) if ts is None else ts
    return {'webhook-id': msg_id, 'webhook-timestamp': str(ts),
            'webhook-signature': h.sw_sign(secret, msg_id, ts, body)}


class ReceiverTest(h.TestCase):
    def test_verifies_signatures(self):
        body = json.dumps({'id': 'msg_1', 'type': 'task:done', 'data': {'n': 1}})
        other = 'whsec_' + 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk='
        with Receiver('--secret', SECRET, '--print') as r:
            self.assertEqual(r.post(body, signed(body)), 204)
            # Rotation: several signatures, one of them right.
            hdr = signed(body)
            hdr['webhook-signature'] = signed(body, secret=other)['webhook-signature'] + ' ' + \
                hdr['webhook-signature']
            self.assertEqual(r.post(body, hdr), 204)
            self.assertEqual(r.post(body, signed(body, secret=other)), 401)
            self.assertEqual(r.post(body + ' ', signed(body)), 401)
            self.assertEqual(r.post(body, signed(body, ts=int(time.time()) - 3600)), 401)
            self.assertEqual(r.post(body, {}), 401)
            rc, lines, err = r.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(len(lines), 6, lines)
        self.assertTrue(lines[0].startswith('task:done msg_1 sig=ok status=204 body={'), lines[0])
        self.assertIn('sig=mismatch status=401', lines[2])
        self.assertIn('sig=timestamp-out-of-tolerance', lines[4])
        self.assertIn('sig=none status=401', lines[5])
        self.assertIn('6 requests', err)
        self.assertIn('4 bad signatures', err)

    def test_fail_every_status_and_count_file(self):
        with tempfile.TemporaryDirectory() as d:
            count = os.path.join(d, 'count')
            with Receiver('--fail-every', '3', '--status', '200', '--count-file', count) as r:
                got = [r.post('{}') for _ in range(7)]
                rc, lines, err = r.stop()
            self.assertEqual(got, [200, 200, 503, 200, 200, 503, 200])
            self.assertEqual(rc, 0)
            self.assertEqual(lines, [])
            with open(count) as f:
                self.assertEqual(f.read().strip(), '7')

    def test_rejects_bad_flags(self):
        for args in (['--secret', 'not-a-secret'], ['--status', '42'], ['--port', 'x'],
                     ['--bind', 'example'], ['--nope']):
            with self.subTest(args=args):
                p = subprocess.run([os.path.join(h.BIN, 'hq-receiver')] + args,
                                   capture_output=True, text=True, timeout=10)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn('hq-receiver:', p.stderr)


class QuickstartTest(h.TestCase):
    def test_quickstart_delivers_over_the_cli_and_the_api(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith('HOOKQ_')}
        # The build this test run uses (build/ or build-asan/), already built.
        env['QUICKSTART_BUILD_DIR'] = os.path.dirname(h.BIN)
        p = subprocess.run(['bash', os.path.join(h.SRC, 'deploy', 'quickstart.sh'),
                            '--no-install'], env=env, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        # The receiver verified three signatures from the CLI part, the CLI and the raw log
        # show 3 deliveries; then one from the API part, whose lookup shows it delivered.
        self.assertEqual(out.count(' sig=ok status=204 '), 4, out)
        self.assertEqual(out.count('task:done evt_'), 3, out)
        self.assertEqual(out.count('order.paid evt_'), 1, out)
        self.assertGreaterEqual(out.count('delivered'), 7, out)
        self.assertIn('"status": "delivered"', out)
        self.assertIn('4 requests: 4 answered 204', out)
        # The API key is never printed, only the variable that holds it.
        self.assertIn('Bearer $KEY', out)
        self.assertNotRegex(out, r'Bearer [0-9a-f]{48}')
        # The generated secret is never printed.
        self.assertIn('whsec_(the secret the receiver knows)', out)


if __name__ == '__main__':
    h.main()
