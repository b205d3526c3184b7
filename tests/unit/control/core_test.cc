// shaper-control's core against a real in-process dataplane ctl server:
// plan push, demand-driven rate updates, reload (by rename, like an editor),
// a broken policy, the dataplane going away and coming back, the metrics
// served over HTTP (checked by promtool) and the admin socket.
#include "control/daemon/core.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <sys/stat.h>
#include <zlib.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <set>

#include "control/daemon/admin.h"
#include "control/daemon/metrics.h"
#include "control/daemon/watcher.h"
#include "tests/unit/control/core_fixture.h"
#include "tests/unit/control/test_env.h"

namespace shaper::control {
namespace {

using shaper::testing::HttpGet;
using shaper::testing::InProcessDataplane;
using shaper::testing::SampleValue;

// DESIGN.md's worked example: shape rate 950 Mbit/s, A 100/.. w1, B 300/400
// w1, C 100/.. w3; all greedy -> A 190, B 390, C 370.
constexpr const char* kPolicy = R"(version: 1
link:
  capacity: 1000Mbit
  shape_at: 95%
classes:
  - name: realtime
    priority: latency
    dscp: [EF]
    max_share: 20%
    queue_limit: 2ms
  - name: bulk
    priority: bulk
    queue_limit: 50ms
    default: true
tenants:
  - name: a
    match: {prefixes: [10.0.1.0/24]}
    guaranteed: 100Mbit
    ceiling: 900Mbit
  - name: b
    match: {prefixes: [10.0.2.0/24]}
    guaranteed: 300Mbit
    ceiling: 400Mbit
  - name: c
    match: {prefixes: [10.0.3.0/24]}
    guaranteed: 100Mbit
    ceiling: 900Mbit
    weight: 3
default_tenant: {ceiling: 50Mbit}
allocation: {mode: dynamic, interval: 100ms}
)";

// b removed, d added, a's ceiling changed.
constexpr const char* kPolicy2 = R"(version: 1
link:
  capacity: 1000Mbit
  shape_at: 95%
classes:
  - name: bulk
    priority: bulk
    queue_limit: 50ms
tenants:
  - name: a
    match: {prefixes: [10.0.1.0/24]}
    guaranteed: 100Mbit
    ceiling: 800Mbit
  - name: c
    match: {prefixes: [10.0.3.0/24]}
    guaranteed: 100Mbit
    ceiling: 900Mbit
    weight: 3
  - name: d
    match: {prefixes: [10.0.4.0/24]}
    guaranteed: 50Mbit
allocation: {mode: dynamic, interval: 100ms}
)";

// The text a gzip stream inflates to; empty unless the stream is whole.
std::string Gunzip(const std::string& in) {
  z_stream zs{};
  std::string out;
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  int ret = Z_OK;
  char buf[1 << 14];
  while (ret == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    ret = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
  }
  inflateEnd(&zs);
  return ret == Z_STREAM_END && zs.avail_in == 0 ? out : std::string();
}

class ControlCoreTest : public shaper::testing::CoreFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartDataplane());
    shaper::testing::WriteByRename(policy_path_, kPolicy);
    ASSERT_NO_FATAL_FAILURE(StartCore());
  }
};

TEST_F(ControlCoreTest, ConnectsPushesPlanThenRatesFromDemand) {
  EXPECT_FALSE(core_->dataplane_up());
  core_->Tick();
  ASSERT_TRUE(core_->dataplane_up());
  auto rx = dataplane_->received();
  EXPECT_EQ(rx.plans, 1u);
  ASSERT_EQ(rx.ids.size(), 4u);  // default, a, b, c
  EXPECT_EQ(rx.ids.at("default"), 0u);
  EXPECT_EQ(core_->plan_generation(), rx.generation);
  // Until demand is measured the plan's assured rates (the guarantees) stand.
  EXPECT_EQ(rx.rate_updates, 0u);
  EXPECT_EQ(Assured("a", abi::kDownload), 100 * kMbit);

  GreedyTick({"a", "b", "c"});  // demand known from the second sample on
  GreedyTick({"a", "b", "c"});
  EXPECT_EQ(Assured("a", abi::kDownload), 190 * kMbit);
  EXPECT_EQ(Assured("b", abi::kDownload), 390 * kMbit);
  EXPECT_EQ(Assured("c", abi::kDownload), 370 * kMbit);
  EXPECT_EQ(Assured("default", abi::kDownload), 0u);
  // Nobody sends upstream: no demand, but the assured rate stays at the
  // guarantee so the tenant gets it the moment it starts (promise 1).
  EXPECT_EQ(Assured("b", abi::kUpload), 300 * kMbit);

  // Only b stays greedy: a and c decay, b is held at its ceiling.
  for (int i = 0; i < 60; ++i) GreedyTick({"b"});
  EXPECT_EQ(Assured("b", abi::kDownload), 400 * kMbit);
  const nlohmann::json e = core_->Explain("b");
  ASSERT_TRUE(e["ok"].get<bool>()) << e.dump();
  EXPECT_EQ(e["directions"][0].value("bound", ""), "ceiling") << e.dump();
  EXPECT_EQ(e["directions"][0]["rate_bps"].get<uint64_t>(), 400 * kMbit);
}

TEST_F(ControlCoreTest, ReloadByRenameKeepsIdsAndBrokenPolicyChangesNothing) {
  const int port = shaper::testing::FreeTcpPort();
  auto metrics = MetricsServer::Start("127.0.0.1:" + std::to_string(port), *core_);
  ASSERT_TRUE(metrics.has_value()) << metrics.error();
  auto watcher = PolicyWatcher::Create(policy_path_);
  ASSERT_TRUE(watcher.has_value()) << watcher.error();
  core_->Tick();
  const auto before = dataplane_->received();
  ASSERT_EQ(before.plans, 1u);

  shaper::testing::WriteByRename(policy_path_, kPolicy2);
  ASSERT_TRUE((*watcher)->ReadEventsSettled(20, 500));
  const ReloadOutcome ok = core_->Reload("inotify");
  ASSERT_TRUE(ok.ok) << ok.error;
  const auto after = dataplane_->received();
  EXPECT_EQ(after.plans, 2u);
  EXPECT_EQ(after.ids.at("a"), before.ids.at("a"));
  EXPECT_EQ(after.ids.at("c"), before.ids.at("c"));
  EXPECT_EQ(after.ids.count("b"), 0u);
  // b's id is not handed to a newcomer in the same reload.
  EXPECT_NE(after.ids.at("d"), before.ids.at("b"));

  std::string text = HttpGet(port, "/metrics");
  EXPECT_EQ(SampleValue(text, "shaper_policy_valid"), 1) << text;
  EXPECT_EQ(SampleValue(text, "shaper_policy_reloads_total{result=\"success\"}"), 1) << text;
  EXPECT_EQ(SampleValue(text, "shaper_policy_last_reload_timestamp_seconds"), 1.8e9) << text;

  // A broken policy (unknown key, ceiling below guarantee): nothing changes.
  shaper::testing::WriteByRename(policy_path_, std::string(kPolicy2) + "bogus: 1\n");
  ASSERT_TRUE((*watcher)->ReadEventsSettled(20, 500));
  const ReloadOutcome bad = core_->Reload("inotify");
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("bogus"), std::string::npos) << bad.error;
  EXPECT_EQ(dataplane_->received().plans, 2u);
  text = HttpGet(port, "/metrics");
  EXPECT_EQ(SampleValue(text, "shaper_policy_valid"), 0) << text;
  EXPECT_EQ(SampleValue(text, "shaper_policy_reloads_total{result=\"error\"}"), 1) << text;
  EXPECT_EQ(SampleValue(text, "shaper_policy_reloads_total{result=\"success\"}"), 1) << text;
  // The policy in force is still kPolicy2: d is there, b is not.
  EXPECT_TRUE(core_->Explain("d")["ok"].get<bool>());
  EXPECT_FALSE(core_->Explain("b")["ok"].get<bool>());
}

TEST_F(ControlCoreTest, MetricsPassPromtoolAndTopNLimitsTenants) {
  CoreOptions options;
  const int port = shaper::testing::FreeTcpPort();
  auto metrics = MetricsServer::Start("127.0.0.1:" + std::to_string(port), *core_);
  ASSERT_TRUE(metrics.has_value()) << metrics.error();
  // A second exposer on the same port must fail with a clear message.
  auto clash = MetricsServer::Start("127.0.0.1:" + std::to_string(port), *core_);
  ASSERT_FALSE(clash.has_value());
  EXPECT_NE(clash.error().find(std::to_string(port)), std::string::npos) << clash.error();

  core_->Tick();
  GreedyTick({"a", "b", "c"});
  GreedyTick({"a", "b", "c"});
  // Dataplane-wide counters from the segment's header and lcore blocks.
  dataplane_->segment().lcore(0)->malformed_forwarded = 7;
  dataplane_->segment().header().pool_mbufs = 16384;
  dataplane_->segment().header().pool_in_use = 1200;
  const std::string top = HttpGet(port, "/metrics");
  EXPECT_EQ(SampleValue(top, "shaper_malformed_forwarded_packets_total"), 7) << top;
  EXPECT_EQ(SampleValue(top, "shaper_mbuf_pool_size"), 16384) << top;
  EXPECT_EQ(SampleValue(top, "shaper_mbuf_pool_in_use"), 1200) << top;
  const std::string all = HttpGet(port, "/metrics/tenants");
  EXPECT_EQ(SampleValue(top, "shaper_dataplane_up"), 1) << top;
  EXPECT_EQ(SampleValue(all,
                        "shaper_tenant_rate_bytes_per_second{tenant=\"c\",direction=\"download\","
                        "kind=\"allocated\"}"),
            370e6 / 8)
      << all;
  EXPECT_EQ(
      SampleValue(all, "shaper_tenant_arrival_bytes_total{tenant=\"a\",direction=\"download\"}"),
      2 * 12.5e6)
      << all;
  EXPECT_NE(top.find("shaper_allocation_duration_seconds_count 2"), std::string::npos) << top;

  if (access("/usr/bin/promtool", X_OK) != 0) {
    if (geteuid() == 0) FAIL() << "/usr/bin/promtool missing (install the prometheus package)";
    GTEST_SKIP() << "promtool not installed (/usr/bin/promtool); not root, so not failing";
  }
  for (const auto& [name, text] : {std::pair{"metrics", top}, std::pair{"tenants", all}}) {
    const std::string file = dir_ + "/" + name + ".txt";
    std::ofstream(file) << text;
    const std::string cmd = "/usr/bin/promtool check metrics < " + file + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string output;
    char buf[512];
    while (fgets(buf, sizeof(buf), p) != nullptr) output += buf;
    EXPECT_EQ(pclose(p), 0) << name << ": promtool says:\n" << output;
  }
}

TEST_F(ControlCoreTest, TopNKeepsTheBusiestTenants) {
  CoreOptions options;
  options.policy_path = policy_path_;
  options.metrics_top_n = 1;
  ControlCore core(
      options, SocketConnector(dir_ + "/dp.sock"), [this] { return now_ns_.load(); },
      [] { return 0.0; }, log_);
  ASSERT_TRUE(core.Start().has_value());
  core.Tick();
  const auto rx = dataplane_->received();
  for (int i = 0; i < 2; ++i) {
    dataplane_->AddTraffic(rx.ids.at("b"), abi::kDownload, 1'000'000);
    now_ns_ += kTickNs;
    dataplane_->segment().Heartbeat(now_ns_);
    core.Tick();
  }
  auto tenants_in = [](const std::vector<prometheus::MetricFamily>& families) {
    std::set<std::string> names;
    for (const auto& f : families) {
      if (f.name != "shaper_tenant_arrival_bytes_total") continue;
      for (const auto& m : f.metric) {
        for (const auto& l : m.label) {
          if (l.name == "tenant") names.insert(l.value);
        }
      }
    }
    return names;
  };
  EXPECT_EQ(tenants_in(core.CollectMetrics(false)), std::set<std::string>{"b"});
  EXPECT_EQ(tenants_in(core.CollectMetrics(true)),
            (std::set<std::string>{"default", "a", "b", "c"}));
}

// The text /metrics and /metrics/tenants serve (AppendMetricsText, no
// MetricFamily per tenant series) is byte for byte what TextSerializer makes
// of CollectMetrics: every family, HELP/TYPE line, label and value, in order.
TEST_F(ControlCoreTest, MetricsTextIsWhatTextSerializerWritesOfTheFamilies) {
  const prometheus::TextSerializer serializer;
  auto check = [&](const char* when) {
    for (bool all : {false, true}) {
      std::string text;
      core_->AppendMetricsText(all, text);
      EXPECT_EQ(text, serializer.Serialize(core_->CollectMetrics(all)))
          << when << (all ? ", all tenants" : ", top N");
    }
  };
  check("before connecting (no stats segment)");
  core_->Tick();
  const auto rx = dataplane_->received();
  check("connected, no traffic");
  // Traffic of every kind the segment counts, in both directions, with
  // values past 2^53 and fractional byte rates.
  for (uint32_t d = 0; d < 2; ++d) {
    dataplane_->AddTraffic(rx.ids.at("a"), d, 1'000'003);
    dataplane_->AddTraffic(rx.ids.at("c"), d, (uint64_t{1} << 60) + 12345);
  }
  GreedyTick({"a", "b", "c"});
  GreedyTick({"a", "b", "c"});
  abi::TenantStats* b = dataplane_->segment().tenant(0, rx.ids.at("b"), abi::kUpload);
  for (uint32_t r = 0; r < abi::kDropReasons; ++r) b->drop_packets[r] = 3 + r;
  *abi::QueuedBytesOf(b, dataplane_->segment().header().num_classes, 1) = 1514;
  dataplane_->segment().lcore(0)->malformed_forwarded = 7;
  check("after traffic and two allocations");
  std::string all;
  core_->AppendMetricsText(true, all);
  for (const char* tenant : {"default", "a", "b", "c"}) {
    EXPECT_NE(all.find(std::string("shaper_tenant_arrival_bytes_total{tenant=\"") + tenant +
                       "\",direction=\"download\"} "),
              std::string::npos)
        << tenant << "\n"
        << all;
  }
}

// The text in pieces (what HTTP/1.1 replies stream) is the same text: cut
// only at the end of a tenant, every piece but the last at least the
// threshold, the last handed over and kept.
TEST_F(ControlCoreTest, MetricsTextInPiecesIsTheSameText) {
  core_->Tick();
  GreedyTick({"a", "b", "c"});
  for (const bool all : {false, true}) {
    std::string whole;
    core_->AppendMetricsText(all, whole);
    constexpr size_t kPiece = 2048;
    std::vector<std::string> pieces;
    std::string text = "# prefix\n";
    core_->WriteMetricsText(all, text, kPiece,
                            [&](std::string& piece) { pieces.push_back(piece); });
    ASSERT_FALSE(pieces.empty());
    EXPECT_EQ(text, pieces.back()) << "the last piece stays in the buffer";
    std::string joined;
    for (size_t i = 0; i < pieces.size(); ++i) {
      joined += pieces[i];
      EXPECT_TRUE(pieces[i].ends_with("\n")) << "piece " << i;
      if (i + 1 < pieces.size()) {
        EXPECT_GE(pieces[i].size(), kPiece) << "piece " << i;
      }
    }
    EXPECT_EQ(joined, "# prefix\n" + whole) << (all ? "all tenants" : "top N");
    // 4 tenants x 2 directions, about 1.5 KiB each: several pieces.
    if (all) {
      EXPECT_GE(pieces.size(), 3u);
    }
  }
}

// Both paths over HTTP: the exposer_* families, then the core's text; gzip
// when the client accepts it (Prometheus does), inflating to the same text.
// HTTP/1.0: the whole body with its length. HTTP/1.1 (Prometheus): chunked
// transfer encoding, sent as the text is written; pieces of 2 KiB here (1 MiB
// by default), so /metrics/tenants takes several and gzip runs across them.
TEST_F(ControlCoreTest, MetricsServedPlainAndGzipped) {
  const int port = shaper::testing::FreeTcpPort();
  constexpr size_t kPiece = 2048;
  auto metrics = MetricsServer::Start("127.0.0.1:" + std::to_string(port), *core_, kPiece);
  ASSERT_TRUE(metrics.has_value()) << metrics.error();
  core_->Tick();
  GreedyTick({"a", "b", "c"});
  auto expect_body = [](const std::string& body, const std::string& core_text,
                        const std::string& what) {
    EXPECT_TRUE(body.starts_with("# HELP exposer_transferred_bytes_total ")) << what << body;
    EXPECT_NE(body.find("\nexposer_scrapes_total "), std::string::npos) << what << body;
    EXPECT_TRUE(body.ends_with(core_text)) << what << "\n" << body;
  };
  for (const bool all : {false, true}) {
    const std::string path = all ? "/metrics/tenants" : "/metrics";
    std::string core_text;
    core_->AppendMetricsText(all, core_text);

    expect_body(HttpGet(port, path), core_text, path + ", HTTP/1.0\n");
    const std::string gzipped = HttpGet(port, path, "Accept-Encoding: gzip\r\n");
    ASSERT_GE(gzipped.size(), 2u);
    EXPECT_EQ(gzipped.substr(0, 2), "\x1f\x8b") << path;
    expect_body(Gunzip(gzipped), core_text, path + ", HTTP/1.0 gzip\n");

    const auto plain = shaper::testing::HttpGetChunked(port, path);
    ASSERT_EQ(plain.error, "") << path << "\n" << plain.headers;
    EXPECT_EQ(plain.headers.find("Content-Encoding"), std::string::npos) << plain.headers;
    EXPECT_EQ(plain.headers.find("Content-Length"), std::string::npos) << plain.headers;
    expect_body(plain.body, core_text, path + ", HTTP/1.1\n");
    if (all) {
      EXPECT_GE(plain.chunks.size(), 3u) << "pieces of " << kPiece << " B";
    }
    for (size_t c = 0; c + 1 < plain.chunks.size(); ++c) {
      EXPECT_GE(plain.chunks[c], kPiece) << path << ", chunk " << c;
    }
    const auto chunked_gzip =
        shaper::testing::HttpGetChunked(port, path, "Accept-Encoding: gzip\r\n");
    ASSERT_EQ(chunked_gzip.error, "") << path << "\n" << chunked_gzip.headers;
    EXPECT_NE(chunked_gzip.headers.find("\r\nContent-Encoding: gzip\r\n"), std::string::npos)
        << chunked_gzip.headers;
    expect_body(Gunzip(chunked_gzip.body), core_text, path + ", HTTP/1.1 gzip\n");
  }
  // A chunked reply's bytes are counted: the counter a reply shows grows by
  // the previous reply's body (counted after it is sent).
  const auto first = shaper::testing::HttpGetChunked(port, "/metrics");
  const auto second = shaper::testing::HttpGetChunked(port, "/metrics");
  EXPECT_EQ(SampleValue(second.body, "exposer_transferred_bytes_total") -
                SampleValue(first.body, "exposer_transferred_bytes_total"),
            static_cast<double>(first.body.size()));
}

TEST_F(ControlCoreTest, DataplaneGoneThenBackGetsThePlanAgain) {
  core_->Tick();
  ASSERT_TRUE(core_->dataplane_up());
  dataplane_->Stop();
  // No heartbeat for longer than the stall limit (2 s).
  now_ns_ += 2'500'000'000;
  core_->Tick();
  EXPECT_FALSE(core_->dataplane_up());
  bool down_in_metrics = false;
  for (const auto& f : core_->CollectMetrics(false)) {
    if (f.name == "shaper_dataplane_up") down_in_metrics = f.metric.at(0).gauge.value == 0;
  }
  EXPECT_TRUE(down_in_metrics);
  // Retries back off; the server is still gone.
  now_ns_ += 200'000'000;
  core_->Tick();
  EXPECT_FALSE(core_->dataplane_up());

  ASSERT_TRUE(dataplane_->Start());
  now_ns_ += 3'000'000'000;  // past the capped backoff (2 s)
  core_->Tick();
  EXPECT_TRUE(core_->dataplane_up());
  EXPECT_EQ(dataplane_->received().plans, 2u);
  EXPECT_EQ(dataplane_->received().ids.size(), 4u);
}

// Two reloads while the dataplane is away: the first removes b, the second
// adds e. The dataplane still runs b's queues and counters under b's id, so
// e must not take it: the plan pushed on reconnection names e under a fresh
// id, and only a later reload may reuse b's.
TEST_F(ControlCoreTest, ReloadsWhileTheDataplaneIsAwayNeverReuseARemovedTenantsId) {
  core_->Tick();
  ASSERT_TRUE(core_->dataplane_up());
  const auto first = dataplane_->received();
  const uint32_t b_id = first.ids.at("b");
  dataplane_->Stop();
  now_ns_ += 2'500'000'000;
  core_->Tick();
  ASSERT_FALSE(core_->dataplane_up());

  shaper::testing::WriteByRename(policy_path_, kPolicy2);  // b leaves, d arrives
  ASSERT_TRUE(core_->Reload("sighup").ok);
  const std::string with_e = std::string(kPolicy2).replace(
      std::string(kPolicy2).find("allocation:"), 0,
      "  - name: e\n    match: {prefixes: [10.0.5.0/24]}\n    guaranteed: 10Mbit\n");
  shaper::testing::WriteByRename(policy_path_, with_e);
  ASSERT_TRUE(core_->Reload("sighup").ok);

  ASSERT_TRUE(dataplane_->Start());
  now_ns_ += 3'000'000'000;
  core_->Tick();
  ASSERT_TRUE(core_->dataplane_up());
  const auto back = dataplane_->received();
  EXPECT_EQ(back.ids.count("b"), 0u);
  EXPECT_NE(back.ids.at("d"), b_id);
  EXPECT_NE(back.ids.at("e"), b_id);
  EXPECT_EQ(back.ids.at("a"), first.ids.at("a"));
  EXPECT_EQ(back.ids.at("c"), first.ids.at("c"));

  // Now that the dataplane took a plan without b, a newcomer may have its id.
  const std::string with_f = with_e.substr(0, with_e.find("allocation:")) +
                             "  - name: f\n    match: {prefixes: [10.0.6.0/24]}\n"
                             "    guaranteed: 10Mbit\n" +
                             with_e.substr(with_e.find("allocation:"));
  shaper::testing::WriteByRename(policy_path_, with_f);
  ASSERT_TRUE(core_->Reload("sighup").ok);
  EXPECT_EQ(dataplane_->received().ids.at("f"), b_id);
}

// A reload whose apply-plan ends without a reply (a call timeout, the
// socket closed mid-call): whether or not the dataplane applied the plan, the
// reloaded (valid) policy ends in force, never the previous one pushed back
// over it. The dataplane here runs kPolicy2 at the end: b gone, d in, a and
// c under their old ids; the control says the policy is valid.
class UnansweredReloadTest : public ControlCoreTest {
 protected:
  double Gauge(const std::string& family) {
    for (const auto& f : core_->CollectMetrics(false)) {
      if (f.name == family) return f.metric.at(0).gauge.value;
    }
    return -1;
  }
  bool Logged(std::string_view msg, std::string_view text = "") const {
    for (const std::string& line : log_lines_) {
      if (line.find(msg) != std::string::npos && line.find(text) != std::string::npos) return true;
    }
    return false;
  }
  void ExpectPolicy2InForce(const shaper::testing::Received& before, uint64_t plans_since) {
    const auto now = dataplane_->received();
    EXPECT_EQ(now.plans, before.plans + plans_since);
    std::set<std::string> names;
    for (const auto& [name, id] : now.ids) names.insert(name);
    EXPECT_EQ(names, (std::set<std::string>{"default", "a", "c", "d"}));
    EXPECT_EQ(now.ids.at("a"), before.ids.at("a"));
    EXPECT_EQ(now.ids.at("c"), before.ids.at("c"));
    EXPECT_TRUE(core_->dataplane_up());
    EXPECT_EQ(core_->plan_generation(), now.generation);
    EXPECT_TRUE(core_->Status()["policy_valid"].get<bool>());
    EXPECT_EQ(Gauge("shaper_policy_valid"), 1);
    EXPECT_EQ(core_->Status()["reloads"]["error"].get<uint64_t>(), 0u);
    EXPECT_FALSE(Logged("policy reload failed"));
    EXPECT_TRUE(core_->Explain("d")["ok"].get<bool>());
  }
  // Connected on the first policy, then the file rewritten with kPolicy2
  // and the next apply-plan set to fail with `fault`; *before: what the
  // dataplane had received until then.
  void ConnectThenEdit(shaper::testing::ApplyFault fault, shaper::testing::Received* before) {
    core_->Tick();
    ASSERT_TRUE(core_->dataplane_up());
    *before = dataplane_->received();
    shaper::testing::WriteByRename(policy_path_, kPolicy2);
    next_apply_fault_ = fault;
  }
  // Past the capped backoff, with a live heartbeat.
  void TickLater() {
    now_ns_ += 3'000'000'000;
    dataplane_->segment().Heartbeat(now_ns_);
    core_->Tick();
  }
};

TEST_F(UnansweredReloadTest, AppliedButReplyLostEndsWithTheReloadedPolicy) {
  shaper::testing::Received before;
  ASSERT_NO_FATAL_FAILURE(ConnectThenEdit(shaper::testing::ApplyFault::kReplyLost, &before));
  const ReloadOutcome out = core_->Reload("test");
  EXPECT_TRUE(out.ok) << out.error;
  EXPECT_EQ(out.tenants, 3u);
  // Applied once unanswered, then pushed again on a new connection.
  ExpectPolicy2InForce(before, 2);
  EXPECT_TRUE(Logged("plan applied", "policy=\"unanswered reload, pushed again\""));
  TickLater();
  ExpectPolicy2InForce(before, 2);
}

TEST_F(UnansweredReloadTest, NeverReachedTheDataplaneEndsWithTheReloadedPolicy) {
  shaper::testing::Received before;
  ASSERT_NO_FATAL_FAILURE(ConnectThenEdit(shaper::testing::ApplyFault::kNotSent, &before));
  const ReloadOutcome out = core_->Reload("test");
  EXPECT_TRUE(out.ok) << out.error;
  ExpectPolicy2InForce(before, 1);
}

// The dataplane applied the plan, lost the reply, and cannot be reached for a
// while: the reload stands (as one made while the dataplane is away) and the
// next connection pushes the reloaded policy, not the previous one.
TEST_F(UnansweredReloadTest, DataplaneAwayAfterwardsGetsTheReloadedPolicyOnReconnection) {
  shaper::testing::Received before;
  ASSERT_NO_FATAL_FAILURE(ConnectThenEdit(shaper::testing::ApplyFault::kReplyLost, &before));
  unreachable_ = true;
  const ReloadOutcome out = core_->Reload("test");
  EXPECT_TRUE(out.ok) << out.error;
  EXPECT_FALSE(core_->dataplane_up());
  EXPECT_EQ(dataplane_->received().plans, before.plans + 1);
  TickLater();
  EXPECT_FALSE(core_->dataplane_up());
  unreachable_ = false;
  TickLater();
  ExpectPolicy2InForce(before, 2);
}

TEST_F(ControlCoreTest, AdminSocketStatusExplainReload) {
  const std::string path = dir_ + "/control.sock";
  auto admin = AdminServer::Create(
      path, [this](const nlohmann::json& req) { return HandleAdminRequest(*core_, req); }, log_);
  ASSERT_TRUE(admin.has_value()) << admin.error();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A second server on a live socket refuses to start.
  EXPECT_FALSE(AdminServer::Create(
                   path, [](const nlohmann::json&) { return nlohmann::json{}; }, log_)
                   .has_value());

  core_->Tick();
  GreedyTick({"a", "b", "c"});
  GreedyTick({"a", "b", "c"});

  // The server is served by this thread (as by the event loop): call from another.
  auto call = [&](nlohmann::json request) {
    auto reply = std::async(std::launch::async, [&] { return AdminCall(path, request); });
    while (reply.wait_for(std::chrono::milliseconds(5)) != std::future_status::ready)
      (*admin)->HandleReady();
    auto r = reply.get();
    EXPECT_TRUE(r.has_value()) << r.error();
    return r.value_or(nlohmann::json{});
  };

  const nlohmann::json status = call({{"cmd", "status"}});
  ASSERT_TRUE(status["ok"].get<bool>()) << status.dump();
  EXPECT_TRUE(status["dataplane_up"].get<bool>());
  EXPECT_EQ(status["tenants"].size(), 8u);  // 4 tenants x 2 directions
  bool found = false;
  for (const auto& row : status["tenants"]) {
    if (row["tenant"] == "a" && row["direction"] == "download") {
      found = true;
      EXPECT_EQ(row["allocated_bps"].get<uint64_t>(), 190 * kMbit);
      EXPECT_EQ(row["rate_bps"].get<uint64_t>(), 1000 * kMbit);
      EXPECT_EQ(row["guaranteed_bps"].get<uint64_t>(), 100 * kMbit);
    }
  }
  EXPECT_TRUE(found) << status.dump();

  const nlohmann::json explain = call({{"cmd", "explain"}, {"tenant", "c"}});
  ASSERT_TRUE(explain["ok"].get<bool>()) << explain.dump();
  const auto& down = explain["directions"][0];
  EXPECT_EQ(down["rate_bps"].get<uint64_t>(), 370 * kMbit);
  EXPECT_EQ(down["floor_bps"].get<uint64_t>(), 100 * kMbit);
  EXPECT_EQ(down["spare_bps"].get<uint64_t>(), 270 * kMbit);

  const nlohmann::json unknown = call({{"cmd", "explain"}, {"tenant", "nobody"}});
  EXPECT_FALSE(unknown["ok"].get<bool>());
  EXPECT_NE(unknown["error"].get<std::string>().find("nobody"), std::string::npos);

  shaper::testing::WriteByRename(policy_path_, kPolicy2);
  const nlohmann::json reload = call({{"cmd", "reload"}});
  EXPECT_TRUE(reload["ok"].get<bool>()) << reload.dump();
  EXPECT_EQ(dataplane_->received().plans, 2u);
  const nlohmann::json bad = call({{"cmd", "frobnicate"}});
  EXPECT_FALSE(bad["ok"].get<bool>());

  admin->reset();
  auto gone = AdminCall(path, {{"cmd", "status"}});
  ASSERT_FALSE(gone.has_value());
  EXPECT_NE(gone.error().find("is shaper-control running?"), std::string::npos) << gone.error();
}

}  // namespace
}  // namespace shaper::control
