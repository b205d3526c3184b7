# shellcheck shell=bash
# The veth testbed of shared/TESTBED.md as a bash library: source it, then
#
#   tb_init TAG          names: netns ${TAG}c (client), ${TAG}s (shaper),
#                        ${TAG}v (server); DPDK --file-prefix ${TAG}
#   tb_create            the namespaces and veth pairs, offloads off, addresses:
#                          client c0: 10.10.1.10, 10.10.2.10, 10.10.3.10 /16
#                            -- veth -- shaper sa | sb -- veth --
#                          server v0: 10.10.0.1/16
#   tb_start_dataplane DATAPLANE SOCK LOG [EAL ARGS...]
#                        shaper-dataplane in the shaper netns on sa/sb
#                        (net_af_packet, pair 0:1); waits for "running";
#                        sets TB_DP_PID. EAL args default to --no-huge -m 512.
#   tb_stop_dataplane    SIGTERM, wait; returns its exit status
#   tb_bridge_up / tb_bridge_down
#                        a Linux bridge br0 over sa and sb in the shaper netns
#                        (the kernel forwards instead of shaper-dataplane)
#   tb_destroy           kills every process left in the namespaces, deletes
#                        them and the DPDK runtime directory of the prefix.
#                        Idempotent; also works from another process that
#                        only knows the TAG (tb_init TAG; tb_destroy).
#
# Every name comes from the TAG, so testbeds with different tags coexist.
# The veth names (c0, sa, sb, v0) live only inside the namespaces.

TB_SERVER_IP=10.10.0.1
# One client address per tenant of config/examples/testbed.yaml.
TB_TENANT_IPS=(10.10.1.10 10.10.2.10 10.10.3.10)

tb_init() {
  TB_TAG=$1
  TB_NS_C=${TB_TAG}c
  TB_NS_S=${TB_TAG}s
  TB_NS_V=${TB_TAG}v
  TB_FILE_PREFIX=$TB_TAG
  TB_DP_PID=
}

# Runs "$@" and on failure prints what failed on stderr and returns 1.
tb__run() {
  "$@" || { echo "testbed: failed: $*" >&2; return 1; }
}

tb_create() {
  local ns dev end
  for ns in "$TB_NS_C" "$TB_NS_S" "$TB_NS_V"; do tb__run ip netns add "$ns" || return 1; done
  tb__run ip link add c0 netns "$TB_NS_C" type veth peer name sa netns "$TB_NS_S" || return 1
  tb__run ip link add v0 netns "$TB_NS_V" type veth peer name sb netns "$TB_NS_S" || return 1
  for end in "$TB_NS_C c0" "$TB_NS_S sa" "$TB_NS_S sb" "$TB_NS_V v0"; do
    read -r ns dev <<<"$end"
    # With offloads on, the kernel hands AF_PACKET 64 KiB super-frames.
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
      { echo "testbed: ethtool -K $dev (offloads off) in $ns failed" >&2; return 1; }
    tb__run ip -n "$ns" link set "$dev" up || return 1
    tb__run ip -n "$ns" link set lo up || return 1
  done
  local ip
  for ip in "${TB_TENANT_IPS[@]}"; do tb__run ip -n "$TB_NS_C" addr add "$ip/16" dev c0 || return 1; done
  tb__run ip -n "$TB_NS_V" addr add "$TB_SERVER_IP/16" dev v0 || return 1
}

tb_start_dataplane() {
  local dataplane=$1 sock=$2 log=$3
  shift 3
  local eal=("$@")
  [[ ${#eal[@]} -gt 0 ]] || eal=(--no-huge -m 512)
  # Its own session (setsid keeps the pid): a Ctrl-C on the terminal reaches
  # the caller, which stops the dataplane when it is ready to.
  setsid ip netns exec "$TB_NS_S" "$dataplane" "${eal[@]}" -l 0,1 --file-prefix "$TB_FILE_PREFIX" --no-pci \
    --no-telemetry --log-level '*:warning' \
    --vdev net_af_packet0,iface=sa,framecnt=8192 --vdev net_af_packet1,iface=sb,framecnt=8192 \
    -- --pairs 0:1 --ctl-socket "$sock" --idle-sleep-us 50 >"$log" 2>&1 &
  TB_DP_PID=$!
  local _
  for _ in $(seq 150); do
    grep -q '^running' "$log" && return 0
    kill -0 "$TB_DP_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "testbed: shaper-dataplane did not start; its log ($log):" >&2
  tail -20 "$log" >&2
  return 1
}

tb_stop_dataplane() {
  [[ -n "$TB_DP_PID" ]] || return 0
  local rc=0
  kill -TERM "$TB_DP_PID" 2>/dev/null || true
  wait "$TB_DP_PID" 2>/dev/null || rc=$?
  TB_DP_PID=
  rm -rf "/var/run/dpdk/$TB_FILE_PREFIX"
  return $rc
}

tb_bridge_up() {
  tb__run ip -n "$TB_NS_S" link add br0 type bridge || return 1
  tb__run ip -n "$TB_NS_S" link set sa master br0 || return 1
  tb__run ip -n "$TB_NS_S" link set sb master br0 || return 1
  tb__run ip -n "$TB_NS_S" link set br0 up
}

tb_bridge_down() {
  ip -n "$TB_NS_S" link del br0 2>/dev/null || true
}

tb_destroy() {
  local ns pids
  for ns in "$TB_NS_C" "$TB_NS_S" "$TB_NS_V"; do
    [[ -e "/run/netns/$ns" ]] || continue
    # Only processes inside our own namespaces: iperf3, ping, the dataplane.
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z "$pids" ]] || kill -TERM $pids 2>/dev/null || true
  done
  local _
  for _ in $(seq 30); do
    pids=
    for ns in "$TB_NS_C" "$TB_NS_S" "$TB_NS_V"; do
      [[ -e "/run/netns/$ns" ]] && pids+=$(ip netns pids "$ns" 2>/dev/null || true)
    done
    [[ -z "$pids" ]] && break
    sleep 0.1
  done
  for ns in "$TB_NS_C" "$TB_NS_S" "$TB_NS_V"; do
    if [[ -e "/run/netns/$ns" ]]; then
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [[ -z "$pids" ]] || kill -KILL $pids 2>/dev/null || true
    fi
  done
  for ns in "$TB_NS_C" "$TB_NS_S" "$TB_NS_V"; do
    [[ -e "/run/netns/$ns" ]] && ip netns del "$ns" 2>/dev/null
  done
  rm -rf "/var/run/dpdk/$TB_FILE_PREFIX"
  return 0
}
