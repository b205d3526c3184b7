#!/usr/bin/python3
"""The veth testbed as a Python library, for the e2e scenarios (scenarios.py).

  client netns (ehcPID: one source address per tenant, 10.10.X.10/16)
    -- veth -- shaper netns (ehaPID | ehbPID: shaper-dataplane, net_af_packet, pair 0:1)
    -- veth -- server netns (ehvPID: 10.10.0.1/16, iperf3 servers)

shaper-control runs in the root namespace (unix sockets cross namespaces) with
its metrics on 127.0.0.1:PORT. Every name (namespaces, veth, DPDK
--file-prefix, temp dir) carries the pid ("e2eh", "eh"), so parallel runs do not
collide. Everything started here is torn down by Testbed.close(), which runs
from `with`, atexit and SIGINT/SIGTERM/SIGHUP, also after a failure.

Rates (Sampler): the control's /metrics/tenants, polled every POLL_S:
shaper_tenant_transmit_bytes_total + overhead * ..._transmit_packets_total,
upload, all classes: the *wire* rate the shaper schedules (Ethernet frame
without FCS, plus the policy's per-packet overhead of preamble+IFG+FCS), the
unit in which guarantees, ceilings and the shape rate are enforced. iperf3
goodput (TCP payload) is about 1448/1538 = 94% of it for full frames.

Standard library only; run with /usr/bin/python3.
"""
import atexit
import json
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
import urllib.request

SERVER_IP = '10.10.0.1'
POLL_S = 0.02
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class TestbedError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and r.returncode != 0:
        raise TestbedError(f'{" ".join(cmd)} exited {r.returncode}: {r.stdout.strip()}')
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def fetch(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def parse_metrics(text):
    """[(name, {labels}, value)] of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line[0] == '#':
            continue
        m = SAMPLE.match(line)
        if m:
            out.append((m.group(1), dict(LABEL.findall(m.group(2) or '')), float(m.group(3))))
    return out


def metric_sum(samples, name, **want):
    vals = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in want.items())]
    if not vals:
        raise TestbedError(f'no series {name}{want} at the metrics endpoint')
    return sum(vals)


def parse_rate(text):
    """'950Mbit' / '1Gbit' / '95%' -> bits per second (or a fraction)."""
    m = re.fullmatch(r'\s*([0-9.]+)\s*(bit|Kbit|Mbit|Gbit|Tbit|%)\s*', str(text))
    if not m:
        raise TestbedError(f'cannot read the rate {text!r}')
    mult = {'bit': 1, 'Kbit': 1e3, 'Mbit': 1e6, 'Gbit': 1e9, 'Tbit': 1e12, '%': 0.01}[m.group(2)]
    return float(m.group(1)) * mult


def maxmin_shares(shape_bps, tenants, demand=None):
    """DESIGN.md's sharing rule: each tenant first gets min(demand, guaranteed);
    the rest of the shape rate is shared by weight among tenants that want
    more, none above min(demand, ceiling), what a capped tenant cannot take
    is shared again (water filling). tenants: {name: (guaranteed, ceiling,
    weight)}; demand: {name: bps}, absent = greedy. Returns {name: bps}."""
    demand = demand or {}
    cap = {n: min(c, demand.get(n, float('inf'))) for n, (g, c, w) in tenants.items()}
    share = {n: min(g, cap[n]) for n, (g, c, w) in tenants.items()}
    spare = shape_bps - sum(share.values())
    open_ = {n for n in tenants if cap[n] > share[n]}
    while spare > 1e-6 and open_:
        wsum = sum(tenants[n][2] for n in open_)
        per_w = spare / wsum
        capped = {n for n in open_ if share[n] + per_w * tenants[n][2] >= cap[n]}
        if not capped:
            for n in open_:
                share[n] += per_w * tenants[n][2]
            spare = 0
            break
        for n in capped:
            spare -= cap[n] - share[n]
            share[n] = cap[n]
        open_ -= capped
    return share


def load_policy_rates(path):
    """A small reader for the flat policies of these tests (no YAML module in
    the standard library): link capacity/shape_at/overhead and each tenant's
    name, prefix, guaranteed, ceiling, weight. Returns (shape_bps, overhead_B,
    interval_s, {name: dict})."""
    text = open(path).read()
    cap = parse_rate(re.search(r'^\s*capacity:\s*(\S+)', text, re.M).group(1))
    shape = re.search(r'^\s*shape_at:\s*(\S+)', text, re.M).group(1)
    shape_bps = cap * parse_rate(shape) if shape.endswith('%') else parse_rate(shape)
    overhead = int(re.search(r'^\s*overhead:\s*(\d+)B', text, re.M).group(1))
    m = re.search(r'interval:\s*(\d+)ms', text)
    interval_s = int(m.group(1)) / 1000 if m else 0.1
    tenants = {}
    body = re.split(r'\n(?=[a-z_]+:)', text.split('\ntenants:', 1)[1] + '\n', maxsplit=1)[0]
    for block in re.split(r'\n\s*- name:', '\n' + body)[1:]:
        name = block.split()[0]
        g = re.search(r'guaranteed:\s*(\S+)', block)
        c = re.search(r'ceiling:\s*(\S+)', block)
        w = re.search(r'weight:\s*(\d+)', block)
        p = re.search(r'prefixes:\s*\[([0-9./]+)', block)
        if not (g and c and p) or re.search(r'(download|upload|group):', block):
            raise TestbedError(f'{path}: tenant {name}: this reader takes one IPv4 prefix and '
                               f'explicit guaranteed/ceiling for both directions, no groups')
        g, c, p = g.group(1), c.group(1), p.group(1)
        tenants[name] = {'guaranteed': parse_rate(g), 'ceiling': parse_rate(c),
                         'weight': int(w.group(1)) if w else 1, 'prefix': p,
                         'addr': p.rsplit('.', 1)[0] + '.10'}
    return shape_bps, overhead, interval_s, tenants


class Sampler:
    """Polls /metrics/tenants every POLL_S in a thread. samples: [(t, {tenant:
    (tx_bytes, tx_packets)}, {(tenant, reason): drops})], upload only, t the
    time the reply arrived."""

    def __init__(self, url, overhead):
        self.url, self.overhead = url, overhead
        self.samples, self.errors = [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            start = time.time()
            try:
                s = parse_metrics(fetch(self.url + '/metrics/tenants'))
                # The reply's time, not the request's: the control holds its
                # lock while it reloads, a scrape may wait there ~0.5 s.
                t = time.time()
            except Exception:  # the control may be down (scenario 6)
                self.errors += 1
                self._stop.wait(POLL_S)
                continue
            tx, drops = {}, {}
            for name, l, v in s:
                if l.get('direction') != 'upload':
                    continue
                if name == 'shaper_tenant_transmit_bytes_total':
                    b, p = tx.get(l['tenant'], (0.0, 0.0))
                    tx[l['tenant']] = (b + v, p)
                elif name == 'shaper_tenant_transmit_packets_total':
                    b, p = tx.get(l['tenant'], (0.0, 0.0))
                    tx[l['tenant']] = (b, p + v)
                elif name == 'shaper_tenant_drop_packets_total':
                    drops[(l['tenant'], l['reason'])] = v
            self.samples.append((t, tx, drops))
            self._stop.wait(max(0.0, POLL_S - (time.time() - start)))

    def wire(self, tx, tenant):
        b, p = tx.get(tenant, (0.0, 0.0))
        return b + self.overhead * p

    def at_or_before(self, t):
        return next((s for s in reversed(self.samples) if s[0] <= t), self.samples[0])

    def at_or_after(self, t):
        return next((s for s in self.samples if s[0] >= t), self.samples[-1])

    def rate(self, tenant, t0, t1):
        """Wire rate (bit/s) from the last sample at or before t0 to the first
        at or after t1 (a window covering [t0, t1], across a polling gap)."""
        a, b = self.at_or_before(t0), self.at_or_after(t1)
        if b[0] <= a[0] or tenant not in b[1]:
            return 0.0
        return (self.wire(b[1], tenant) - self.wire(a[1], tenant)) * 8 / (b[0] - a[0])

    def series(self, tenant, window_s):
        """[(t, bit/s over the trailing window_s)] for every sample."""
        out, j = [], 0
        s = self.samples
        for i in range(len(s)):
            while j < i and s[i][0] - s[j + 1][0] >= window_s:
                j += 1
            if s[i][0] - s[j][0] < window_s * 0.8 or tenant not in s[i][1]:
                continue
            if tenant not in s[j][1]:
                out.append((s[i][0], 0.0))
                continue
            out.append((s[i][0], (self.wire(s[i][1], tenant) - self.wire(s[j][1], tenant)) * 8 /
                        (s[i][0] - s[j][0])))
        return out

    def drops(self, t0, t1, reasons=None, tenants=None):
        """{(tenant, reason): drops counted between t0 and t1}."""
        a, b = self.at_or_before(t0)[2], self.at_or_after(t1)[2]
        out = {}
        for k, v in b.items():
            if (reasons and k[1] not in reasons) or (tenants and k[0] not in tenants):
                continue
            d = v - a.get(k, 0.0)
            if d:
                out[k] = d
        return out


class Testbed:
    def __init__(self, name, dataplane, control, shaperctl, outdir, tenants_addrs):
        self.name = name
        self.dataplane, self.control_bin, self.shaperctl = dataplane, control, shaperctl
        self.outdir = outdir
        os.makedirs(outdir, exist_ok=True)
        self.tag = f'e2eh{os.getpid()}'
        self.ns = {k: f'{self.tag}{k}' for k in 'csv'}
        self.dev = {k: f'eh{k}{os.getpid()}'[:15] for k in 'cabv'}
        self.file_prefix = f'{self.tag}-{name}'
        self.tmp = tempfile.mkdtemp(prefix=f'shaper-{self.tag}-')
        self.addrs = tenants_addrs
        self.procs = []  # (name, Popen)
        self.dp = self.ctl = None
        self.moved_kthreads = []  # (pid, previous mask): keep_off_worker_core
        self.metrics_port = free_port()
        self.url = f'http://127.0.0.1:{self.metrics_port}'
        self.policy = os.path.join(self.tmp, 'policy', 'policy.yaml')
        self._closed = False
        atexit.register(self.close)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame):
        self.close()
        sys.exit(128 + signum)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- lifetime
    def setup(self):
        for ns in self.ns.values():
            run(['ip', 'netns', 'add', ns])
        run(['ip', 'link', 'add', self.dev['c'], 'netns', self.ns['c'], 'type', 'veth',
             'peer', 'name', self.dev['a'], 'netns', self.ns['s']])
        run(['ip', 'link', 'add', self.dev['v'], 'netns', self.ns['v'], 'type', 'veth',
             'peer', 'name', self.dev['b'], 'netns', self.ns['s']])
        for ns, dev in (('c', 'c'), ('s', 'a'), ('s', 'b'), ('v', 'v')):
            # With offloads on, the kernel hands AF_PACKET 64 KiB super-frames.
            run(['ip', 'netns', 'exec', self.ns[ns], 'ethtool', '-K', self.dev[dev], 'tso', 'off',
                 'gso', 'off', 'gro', 'off', 'tx', 'off', 'rx', 'off'])
            run(['ip', '-n', self.ns[ns], 'link', 'set', self.dev[dev], 'up'])
            run(['ip', '-n', self.ns[ns], 'link', 'set', 'lo', 'up'])
        for addr in self.addrs:
            self.add_client_addr(addr)
        run(['ip', '-n', self.ns['v'], 'addr', 'add', f'{SERVER_IP}/16', 'dev', self.dev['v']])
        os.makedirs(os.path.dirname(self.policy))

    def add_client_addr(self, addr):
        run(['ip', '-n', self.ns['c'], 'addr', 'add', f'{addr}/16', 'dev', self.dev['c']])

    def close(self):
        if self._closed:
            return
        self._closed = True
        for _, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for _, p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for pid, mask in self.moved_kthreads:
            try:
                os.sched_setaffinity(pid, mask)
            except OSError:
                pass
        for ns in self.ns.values():
            subprocess.run(['ip', 'netns', 'del', ns], stderr=subprocess.DEVNULL)
        shutil.rmtree(f'/var/run/dpdk/{self.file_prefix}', ignore_errors=True)
        # Keep the logs beside the picture for a post-mortem.
        for f in os.listdir(self.tmp):
            if f.endswith('.log') or f.endswith('.json'):
                shutil.copy(os.path.join(self.tmp, f), os.path.join(self.outdir, f'{self.name}-{f}'))
        shutil.rmtree(self.tmp, ignore_errors=True)

    def spawn(self, name, cmd, ns=None, logname=None):
        if ns:
            cmd = ['ip', 'netns', 'exec', self.ns[ns]] + cmd
        out = open(os.path.join(self.tmp, logname or f'{name}.log'), 'w')
        # Own process group: close() kills iperf3/ping children with it.
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.procs.append((name, p))
        return p

    def logtext(self, name):
        try:
            return open(os.path.join(self.tmp, name)).read()
        except OSError:
            return ''

    # The dataplane runs its main lcore on CPU 0 and its worker on CPU 1
    # (EAL -l 0,1 below).
    WORKER_CPU = 1

    def keep_off_worker_core(self):
        """Gives the worker's CPU to the worker, as `isolcpus=` does on a
        deployed host (docs/operations.md): confines this harness and all it
        starts from now on (the dataplane's main lcore and EAL threads, the
        control, iperf3, ping) to the other CPUs, and moves the kernel's
        unbound threads (kdamond, kcompactd, rcu_preempt, ...) off it until
        close() puts them back. EAL pins the worker itself to WORKER_CPU
        whatever the inherited mask. Per-CPU kernel threads (ksoftirqd/N,
        kworker/N) and the kernel's TCP work for the frames the worker sends
        stay on the worker's core. Returns the CPUs the rest runs on."""
        cpus = os.sched_getaffinity(0) - {self.WORKER_CPU}
        if not cpus:
            raise TestbedError(f'no CPU besides the worker\'s (CPU {self.WORKER_CPU}) to run the harness on')
        os.sched_setaffinity(0, cpus)
        for pid in os.listdir('/proc'):
            if not pid.isdigit():
                continue
            try:
                with open(f'/proc/{pid}/stat') as f:
                    ppid = f.read().rsplit(')', 1)[1].split()[1]
                mask = os.sched_getaffinity(int(pid))
                if ppid != '2' or self.WORKER_CPU not in mask or len(mask) < 2:
                    continue
                os.sched_setaffinity(int(pid), mask - {self.WORKER_CPU})
                self.moved_kthreads.append((int(pid), mask))
            except OSError:  # gone, or pinned by the kernel (PF_NO_SETAFFINITY)
                continue
        log(f'CPU {self.WORKER_CPU} kept for the worker: harness on {sorted(cpus)}, '
            f'{len(self.moved_kthreads)} unbound kernel threads moved off it until the end')
        return cpus

    def start_dataplane(self):
        self.dp = self.spawn('dp', [
            self.dataplane, '--no-huge', '-m', '512', '-l', f'0,{self.WORKER_CPU}', '--file-prefix', self.file_prefix,
            '--no-pci', '--no-telemetry', '--log-level', '*:warning',
            '--vdev', f'net_af_packet0,iface={self.dev["a"]},framecnt=8192',
            '--vdev', f'net_af_packet1,iface={self.dev["b"]},framecnt=8192',
            '--', '--pairs', '0:1', '--ctl-socket', f'{self.tmp}/dp.sock', '--idle-sleep-us', '50'],
            ns='s')
        for _ in range(150):
            if re.search(r'^running', self.logtext('dp.log'), re.M):
                return
            if self.dp.poll() is not None:
                break
            time.sleep(0.1)
        raise TestbedError(f'shaper-dataplane did not start:\n{self.logtext("dp.log")[-2000:]}')

    def dataplane_cpu(self):
        """{thread name: CPU seconds (user + system)} of the dataplane's
        threads: a poll-mode worker well under 1 s per second of wall time
        means the machine starved the testbed, not that the shaper failed."""
        out = {}
        tick = os.sysconf('SC_CLK_TCK')
        for task in os.listdir(f'/proc/{self.dp.pid}/task'):
            try:
                with open(f'/proc/{self.dp.pid}/task/{task}/stat') as f:
                    stat = f.read()
            except OSError:
                continue
            name = stat[stat.index('(') + 1:stat.rindex(')')]
            fields = stat[stat.rindex(')') + 2:].split()
            out[f'{name}/{task}'] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def write_policy(self, src):
        """Installs src as the control's policy: a new file renamed over the
        old one, as editors do."""
        tmp = self.policy + '.new'
        shutil.copy(src, tmp)
        os.rename(tmp, self.policy)

    def start_control(self, logname='control.log'):
        self.ctl = self.spawn('control', [
            self.control_bin, '--policy', self.policy, '--dataplane', f'{self.tmp}/dp.sock',
            '--metrics', f'127.0.0.1:{self.metrics_port}', '--admin', f'{self.tmp}/admin.sock',
            '--state', f'{self.tmp}/control.ids'], logname=logname)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if metric_sum(parse_metrics(fetch(self.url + '/metrics')), 'shaper_dataplane_up') == 1:
                    return
            except Exception:
                pass
            if self.ctl.poll() is not None:
                break
            time.sleep(0.05)
        raise TestbedError(f'shaper-control did not connect to the dataplane:\n'
                           f'{self.logtext(logname)[-2000:]}')

    def kill_control(self):
        self.ctl.send_signal(signal.SIGKILL)
        self.ctl.wait()

    def metrics(self, path='/metrics'):
        return parse_metrics(fetch(self.url + path))

    def status(self):
        return json.loads(run([self.shaperctl, 'status', '--json', '--admin', f'{self.tmp}/admin.sock']))

    # --- traffic
    def iperf_server(self, port):
        self.spawn(f'iperf-s{port}', ['iperf3', '-s', '-B', SERVER_IP, '-p', str(port)], ns='v')

    def wait_servers(self, ports):
        deadline = time.time() + 5
        for port in ports:
            while f':{port} ' not in run(['ip', 'netns', 'exec', self.ns['v'], 'ss', '-ltnH']):
                if time.time() > deadline:
                    raise TestbedError(f'iperf3 server on port {port} did not listen')
                time.sleep(0.05)

    def iperf_client(self, name, addr, port, seconds, flows=2, udp_bps=None, interval=0.5):
        """iperf3 from addr (a tenant's source address) to the server's port,
        `flows` parallel streams, JSON out to NAME.json; udp_bps for UDP."""
        cmd = ['iperf3', '-c', SERVER_IP, '-B', addr, '-p', str(port), '-t', str(seconds),
               '-P', str(flows), '-i', str(interval), '--json', '--connect-timeout', '3000']
        if udp_bps:
            cmd += ['-u', '-b', str(int(udp_bps)), '-l', '1400']
        return self.spawn(name, cmd, ns='c', logname=f'{name}.json')

    def iperf_result(self, name, wait_s=5.0):
        """The iperf3 client NAME's JSON, once it has exited (iperf3 writes
        it at the end); {'error': why} when it is still running after
        wait_s (a stalled flow keeps it running) or wrote no JSON."""
        for pname, p in self.procs:
            if pname == name:
                try:
                    p.wait(timeout=wait_s)
                except subprocess.TimeoutExpired:
                    return {'error': f'{name} still running {wait_s:.0f} s after its end (stalled?)'}
        text = self.logtext(f'{name}.json')
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            return {'error': f'{name}: iperf3 JSON unreadable ({e}): {text[:300]}'}

    def ping(self, addr, count, interval_s, tos=0xb8):
        """RTTs in ms of `count` pings from addr with the given TOS (EF), one
        float('inf') per lost ping (no reply within 1 s)."""
        out = run(['ip', 'netns', 'exec', self.ns['c'], 'ping', '-n', '-Q', hex(tos), '-I', addr,
                   '-c', str(count), '-i', str(interval_s), '-W', '1', SERVER_IP], check=False)
        rtts = [float(x) for x in re.findall(r'time=([0-9.]+) ms', out)]
        if not rtts:
            raise TestbedError(f'ping from {addr}: no reply:\n{out[-1000:]}')
        return rtts + [float('inf')] * max(0, count - len(rtts))

    def check_path(self, addr):
        out = run(['ip', 'netns', 'exec', self.ns['c'], 'ping', '-c', '3', '-i', '0.2', '-W', '2', '-I', addr,
                   SERVER_IP], check=False)
        m = re.search(r'(\d+) received', out)
        if not m or int(m.group(1)) < 2:
            raise TestbedError(f'ping {SERVER_IP} from {addr} through the shaper:\n{out}')


def percentile(values, p):
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    f = int(k)
    lo, hi = v[f], v[min(f + 1, len(v) - 1)]
    if hi == float('inf'):  # a lost ping: no interpolation towards infinity
        return hi if k > f or lo == hi else lo
    return lo + (hi - lo) * (k - f)


def plot(path, title, sampler, tenants, t0, window_s=0.1, events=(), expected=None):
    """gnuplot SVG: each tenant's wire rate over a trailing window_s window
    against its guarantee (dashed), ceiling (dotted, when below 940 Mbit/s)
    and expected share (dash-dot, when given); events: [(t, label)] drawn as
    vertical lines. tenants: {name: (guaranteed, ceiling)}, expected: {name:
    share}, in bit/s."""
    base = os.path.splitext(path)[0]
    colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b']
    plots = []
    for i, (name, (g, c)) in enumerate(tenants.items()):
        data = f'{base}.{name}.dat'
        with open(data, 'w') as f:
            for t, r in sampler.series(name, window_s):
                f.write(f'{t - t0:.3f} {r / 1e6:.2f}\n')
        col = colors[i % len(colors)]
        plots.append(f'"{data}" using 1:2 with lines lw 2 lc rgb "{col}" title "{name}"')
        plots.append(f'{g / 1e6:.3f} with lines dt 2 lc rgb "{col}" title "{name} guaranteed"')
        if c < 940e6:
            plots.append(f'{c / 1e6:.3f} with lines dt 3 lw 2 lc rgb "{col}" title "{name} ceiling"')
        if expected and name in expected:
            plots.append(f'{expected[name] / 1e6:.3f} with lines dt 4 lc rgb "{col}" title "{name} expected"')
    arrows = ''.join(f'set arrow from {t - t0:.2f}, graph 0 to {t - t0:.2f}, graph 1 nohead lc rgb "gray"\n'
                     f'set label "{label}" at {t - t0:.2f}, graph 0.97 offset 0.3,0 font ",9"\n'
                     for t, label in events)
    script = f'''set terminal svg size 1000,540 dynamic font "sans,11"
set output "{path}"
set title "{title}"
set xlabel "time (s)"
set ylabel "wire rate (Mbit/s, {int(window_s * 1000)} ms windows)"
set key outside right
set grid
set yrange [0:*]
set xrange [0:*]
{arrows}plot {", ".join(plots)}
'''
    with open(base + '.gp', 'w') as f:
        f.write(script)
    r = subprocess.run(['gnuplot', base + '.gp'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise TestbedError(f'gnuplot {base}.gp: {r.stdout}')
    return path
