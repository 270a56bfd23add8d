"""Test harness for the Python e2e suites: the emulator, the credsync
sidecar, and gRPC stubs generated from the repository's .proto files alone.

    stubs = generate_stubs()                 # protoc + grpc_python_plugin, temp dir
    emu = Emulator.start()                   # fresh state dir, port 0, its own CA
    world = emu.rrsa_world('py', ['acs/ram/user/py-app'])
    sc = Sidecar.start(config_file, env=world.env)
    sc.wait_for_log(lambda l: l.get('msg') == 'control listening', 'the socket')
    ...; sc.stop(); emu.stop()

The binaries come from $CREDSYNC_EMULATOR and $CREDSYNC_BIN (ctest sets
them through tests/e2e/python/run.sh); stderr logs (JSON lines) go to
$CREDSYNC_E2E_LOG_DIR when set, else into the temporary dirs.
CREDSYNC_RECORD_SECRETS=1 and CREDSYNC_E2E_LOG_LEVEL=debug are the
secret-hygiene test's switches (tests/e2e/hygiene): the emulators list every
secret they issue, and credsync runs at that log level.

It needs Debian's python3-grpcio and python3-protobuf (/usr/bin/python3),
protoc (protobuf-compiler) and grpc_python_plugin (protobuf-compiler-grpc).
"""

import atexit
import http.client
import importlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
PROTO_DIR = os.path.join(REPO, 'proto')
ACCOUNT = '1234567890123456'
ISSUER = 'https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c-emulator'

_STUB_DIR = None

# Every child this process started and has not reaped, so that a crashing
# test run does not leave an emulator or a sidecar behind.
_RUNNING = set()


def _kill_running():
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


atexit.register(_kill_running)


def generate_stubs():
    """Generates credsync.v1 and grpc.health.v1 Python stubs from the .proto
    files with protoc and Debian's grpc_python_plugin into a temporary dir,
    and imports them. Returns a namespace with credsync_pb2,
    credsync_pb2_grpc, health_pb2, health_pb2_grpc.

    The health proto is compiled from a copy at health_v1/health.proto: its
    real path, grpc/health/v1/, would generate a top-level Python package
    named `grpc` that the installed grpc package shadows. The proto package
    (grpc.health.v1, which names the service on the wire) is unchanged.
    """
    global _STUB_DIR
    if _STUB_DIR is None:
        out = tempfile.mkdtemp(prefix='credsync-pystubs-')
        src = os.path.join(out, 'src')
        os.makedirs(os.path.join(src, 'credsync', 'v1'))
        os.makedirs(os.path.join(src, 'health_v1'))
        shutil.copy(os.path.join(PROTO_DIR, 'credsync', 'v1', 'credsync.proto'),
                    os.path.join(src, 'credsync', 'v1', 'credsync.proto'))
        shutil.copy(os.path.join(PROTO_DIR, 'grpc', 'health', 'v1', 'health.proto'),
                    os.path.join(src, 'health_v1', 'health.proto'))
        gen = os.path.join(out, 'gen')
        os.makedirs(gen)
        plugin = shutil.which('grpc_python_plugin') or '/usr/bin/grpc_python_plugin'
        command = ['protoc', f'--python_out={gen}', f'--grpc_out={gen}',
                   f'--plugin=protoc-gen-grpc={plugin}', f'-I{src}',
                   'credsync/v1/credsync.proto', 'health_v1/health.proto']
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f'{" ".join(command)} failed:\n{result.stderr}')
        sys.path.insert(0, gen)
        atexit.register(shutil.rmtree, out, True)
        _STUB_DIR = out
    ns = type('Stubs', (), {})()
    ns.credsync_pb2 = importlib.import_module('credsync.v1.credsync_pb2')
    ns.credsync_pb2_grpc = importlib.import_module('credsync.v1.credsync_pb2_grpc')
    ns.health_pb2 = importlib.import_module('health_v1.health_pb2')
    ns.health_pb2_grpc = importlib.import_module('health_v1.health_pb2_grpc')
    return ns


def _log_dir(fallback):
    directory = os.environ.get('CREDSYNC_E2E_LOG_DIR') or fallback
    os.makedirs(directory, exist_ok=True)
    return directory


def _tail(path, max_bytes=16384):
    try:
        with open(path, 'rb') as f:
            data = f.read()
        return data[-max_bytes:].decode('utf-8', 'replace')
    except OSError as err:
        return f'(cannot read {path}: {err})'


def parse_log_lines(text):
    lines = []
    for line in text.splitlines():
        if line.startswith('{'):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def wait_until(predicate, what, timeout=30.0, interval=0.02, describe=None):
    """Polls `predicate` until it returns a truthy value, which is returned.
    Fails after `timeout` seconds naming `what` (and describe(), if given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f'\n{describe()}' if describe else ''
            raise AssertionError(f'no {what} within {timeout} s{extra}')
        time.sleep(interval)


class Emulator:
    """credsync-emulator on port 0 in a fresh state dir (tests/emulator/README.md)."""

    def __init__(self, proc, state_dir, port, stderr_file):
        self.proc = proc
        self.state_dir = state_dir
        self.port = port
        self.stderr_file = stderr_file
        self.endpoint = f'127.0.0.1:{port}'
        self.ca_file = os.path.join(state_dir, 'ca.pem')
        self._ssl = ssl.create_default_context(cafile=self.ca_file)

    @classmethod
    def start(cls, binary=None, timeout=20.0):
        binary = binary or os.environ.get('CREDSYNC_EMULATOR')
        if not binary or not os.path.exists(binary):
            raise RuntimeError(f'CREDSYNC_EMULATOR={binary} does not name the credsync-emulator binary')
        state_dir = tempfile.mkdtemp(prefix='credsync-pyemu-')
        port_file = os.path.join(state_dir, 'port')
        stderr_file = os.path.join(_log_dir(state_dir),
                                   f'emulator-py-{os.getpid()}-{time.time_ns()}.stderr.log')
        args = [binary, '--state-dir', state_dir, '--port-file', port_file, '--log-level', 'debug']
        # The secret-hygiene test (tests/e2e/hygiene) asks every emulator to
        # list the secrets it issues, to look for them in credsync's logs.
        if os.environ.get('CREDSYNC_RECORD_SECRETS') == '1':
            args += ['--record-secrets', os.path.join(_log_dir(state_dir),
                                                      f'emulator-secrets-{os.getpid()}.txt')]
        with open(stderr_file, 'ab') as err:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        _RUNNING.add(proc)

        def port():
            if proc.poll() is not None:
                raise RuntimeError(f'credsync-emulator exited ({proc.returncode}) during startup:\n'
                                   f'{_tail(stderr_file)}')
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                return int(text) if text.isdigit() and int(text) > 0 else None
            except OSError:
                return None

        try:
            value = wait_until(port, 'emulator port file', timeout,
                               describe=lambda: _tail(stderr_file))
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        return cls(proc, state_dir, value, stderr_file)

    def request(self, method, path, body=None):
        """One HTTPS request trusting only the emulator's CA: (status, parsed JSON or text)."""
        conn = http.client.HTTPSConnection('127.0.0.1', self.port, context=self._ssl, timeout=15)
        try:
            payload = None if body is None else json.dumps(body)
            headers = {} if body is None else {'content-type': 'application/json'}
            conn.request(method, path, body=payload, headers=headers)
            res = conn.getresponse()
            text = res.read().decode('utf-8')
            try:
                parsed = json.loads(text) if text else {}
            except ValueError:
                parsed = text
            return res.status, parsed
        finally:
            conn.close()

    def admin(self, method, path, body=None):
        status, parsed = self.request(method, path, body)
        if not 200 <= status < 300:
            raise AssertionError(f'admin {method} {path} answered {status}: {parsed}')
        return parsed

    def rotate(self, secret, revoke_previous=False):
        return self.admin('POST', f'/admin/secrets/{urllib.parse.quote(secret, safe="")}/rotate',
                          {'revoke_previous': revoke_previous})

    def reset_counters(self):
        self.admin('DELETE', '/admin/counters')

    def requests(self, action):
        """How many requests reached `action` since the last counter reset."""
        counters = self.admin('GET', '/admin/counters')
        return counters.get('actions', {}).get(action, {}).get('requests', 0)

    def rrsa_world(self, name, secrets, readable=None):
        """An OIDC provider, a role trusted by one service account that may
        read `readable` (default: `secrets`), the RAMCredentials `secrets`,
        and a projected token file; the same world as
        tests/e2e/node/sidecar.mjs setUpRrsaWorld."""
        directory = tempfile.mkdtemp(prefix=f'credsync-py-{name}-')
        provider_arn = f'acs:ram::{ACCOUNT}:oidc-provider/ack-rrsa-{name}'
        role_arn = f'acs:ram::{ACCOUNT}:role/{name}'
        subject = f'system:serviceaccount:default:{name}'
        self.admin('POST', '/admin/oidc-providers', {'arn': provider_arn, 'issuer': ISSUER})
        self.admin('POST', '/admin/roles', {'arn': role_arn, 'oidc_provider_arn': provider_arn,
                                            'subjects': [subject],
                                            'secrets': secrets if readable is None else readable})
        created = {s: self.admin('POST', '/admin/secrets', {'name': s}) for s in secrets}
        token_file = os.path.join(directory, 'token')
        self.admin('POST', '/admin/oidc/tokens', {'subject': subject, 'file': token_file})
        world = type('World', (), {})()
        world.dir = directory
        world.secrets = created
        world.env = {
            'ALIBABA_CLOUD_ROLE_ARN': role_arn,
            'ALIBABA_CLOUD_OIDC_PROVIDER_ARN': provider_arn,
            'ALIBABA_CLOUD_OIDC_TOKEN_FILE': token_file,
            'ALIBABA_CLOUD_STS_ENDPOINT': self.endpoint,
            'POD_NAME': f'{name}-pod',
        }
        return world

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.state_dir, ignore_errors=True)


def write_config(directory, config):
    """Writes `config` as JSON; adds control.http_address 127.0.0.1:0 when
    the config has none (the default, 0.0.0.0:9808, must not be bound by tests)."""
    config = json.loads(json.dumps(config))
    control = config.setdefault('control', {})
    control.setdefault('http_address', '127.0.0.1:0')
    path = os.path.join(directory, f'config-{time.time_ns()}.json')
    with open(path, 'w') as f:
        json.dump(config, f, indent=2)
    return path


class Sidecar:
    """`credsync run --config FILE`, its stderr kept in a file."""

    def __init__(self, proc, stderr_file):
        self.proc = proc
        self.stderr_file = stderr_file

    @classmethod
    def start(cls, config_file, env, name='run'):
        binary = os.environ.get('CREDSYNC_BIN')
        if not binary or not os.path.exists(binary):
            raise RuntimeError(f'CREDSYNC_BIN={binary} does not name the credsync binary')
        stderr_file = os.path.join(_log_dir(os.path.dirname(config_file)),
                                   f'credsync-py-{name}-{os.getpid()}-{time.time_ns()}.stderr.log')
        args = [binary, 'run', '--config', config_file]
        # CREDSYNC_E2E_LOG_LEVEL=debug: the secret-hygiene test's debug run.
        if os.environ.get('CREDSYNC_E2E_LOG_LEVEL'):
            args[2:2] = ['--log-level', os.environ['CREDSYNC_E2E_LOG_LEVEL']]
        stdout_file = stderr_file[:-len('.stderr.log')] + '.stdout.log'
        with open(stderr_file, 'ab') as err, open(stdout_file, 'ab') as out:
            proc = subprocess.Popen(args,
                                    env={'PATH': os.environ.get('PATH', ''), **env},
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _RUNNING.add(proc)
        return cls(proc, stderr_file)

    def stderr(self):
        return _tail(self.stderr_file, 1 << 22)

    def logs(self):
        return parse_log_lines(self.stderr())

    def wait_for_log(self, predicate, what, timeout=30.0):
        def found():
            for line in self.logs():
                if predicate(line):
                    return line
            if self.proc.poll() is not None:
                raise AssertionError(f'credsync exited ({self.proc.returncode}) before {what}:\n'
                                     f'{self.stderr()}')
            return None
        return wait_until(found, what, timeout, describe=self.stderr)

    def listening(self, transport, msg='control listening'):
        """The address of the listener `credsync run` logged."""
        line = self.wait_for_log(lambda l: l.get('msg') == msg and
                                 (transport is None or l.get('transport') == transport),
                                 f'a "{msg}" log line ({transport})')
        return line['address']

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
