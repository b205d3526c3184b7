#include "control/check_report.h"

#include <algorithm>

#include <fmt/format.h>

#include "config/units.h"

namespace shaper::control {
namespace {

using config::Direction;
using config::DirectionRates;
using config::FormatBitRate;
using config::kDirections;
using config::Policy;

__extension__ typedef unsigned __int128 u128;  // -Wpedantic rejects __int128 without __extension__

uint64_t Saturate(u128 v) { return v > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(v); }

double Ratio(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

std::string Percent(uint64_t part, uint64_t whole) { return fmt::format("{:.2f}%", 100.0 * Ratio(part, whole)); }

std::string GroupName(const Policy& p, uint32_t group) {
  return group == config::kNoGroup ? "-" : p.groups[group].name;
}

nlohmann::json RatesJson(const DirectionRates& r, uint64_t shape_bps) {
  return {{"guaranteed_bps", r.guaranteed_bps},
          {"ceiling_bps", r.ceiling_bps},
          {"weight", r.weight},
          {"burst_bytes", r.burst_bytes},
          {"static_share", Ratio(r.guaranteed_bps, shape_bps)}};
}

}  // namespace

CheckTotals ComputeTotals(const Policy& policy) {
  CheckTotals totals;
  for (int d = 0; d < kDirections; ++d) {
    const auto dz = static_cast<size_t>(d);
    u128 guaranteed = policy.default_tenant[dz].guaranteed_bps;
    u128 ceiling = 0;  // the default tenant's ceiling is a cap, not a tenant's demand
    for (const config::Tenant& t : policy.tenants) {
      guaranteed += t.rates[dz].guaranteed_bps;
      ceiling += t.rates[dz].ceiling_bps;
    }
    totals.guaranteed_bps[d] = Saturate(guaranteed);
    totals.ceiling_bps[d] = Saturate(ceiling);
  }
  return totals;
}

std::string CheckTable(const std::string& file, const Policy& p, uint64_t limit) {
  const uint64_t shape = p.link.shape_rate_bps;
  const auto count = [](size_t n, std::string_view one, std::string_view many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
  };
  std::string out = fmt::format("{}: valid: {}, {}, {}\n", file, count(p.tenants.size(), "tenant", "tenants"),
                                count(p.groups.size(), "group", "groups"), count(p.classes.size(), "class", "classes"));
  out += fmt::format("link: capacity {}, shape rate {} ({} of capacity), overhead {}B per packet\n\n",
                     FormatBitRate(p.link.capacity_bps), FormatBitRate(shape), Percent(shape, p.link.capacity_bps),
                     p.link.overhead_bytes);

  const size_t shown = limit == 0 ? p.tenants.size() : std::min<size_t>(p.tenants.size(), limit);
  size_t name_w = std::string_view("(default)").size();
  size_t group_w = std::string_view("group").size();
  for (size_t i = 0; i < shown; ++i) {
    name_w = std::max(name_w, p.tenants[i].name.size());
    group_w = std::max(group_w, GroupName(p, p.tenants[i].group).size());
  }
  const auto row = [&](std::string_view name, std::string_view group, Direction d, const DirectionRates& r) {
    out += fmt::format("{:<{}}  {:<{}}  {:<8}  {:>12}  {:>12}  {:>6}  {:>8}\n", name, name_w, group, group_w,
                       config::DirectionName(d), FormatBitRate(r.guaranteed_bps), FormatBitRate(r.ceiling_bps),
                       r.weight, Percent(r.guaranteed_bps, shape));
  };
  out += fmt::format("{:<{}}  {:<{}}  {:<8}  {:>12}  {:>12}  {:>6}  {:>8}\n", "tenant", name_w, "group", group_w,
                     "dir", "guaranteed", "ceiling", "weight", "share");
  for (size_t i = 0; i < shown; ++i) {
    const config::Tenant& t = p.tenants[i];
    for (int d = 0; d < kDirections; ++d) {
      row(d == 0 ? std::string_view(t.name) : "", d == 0 ? GroupName(p, t.group) : "", static_cast<Direction>(d),
          t.rates[static_cast<size_t>(d)]);
    }
  }
  for (int d = 0; d < kDirections; ++d) {
    row(d == 0 ? "(default)" : "", "", static_cast<Direction>(d), p.default_tenant[static_cast<size_t>(d)]);
  }
  if (shown < p.tenants.size()) {
    out += fmt::format("... {} more tenants not listed (--limit 0 lists all)\n", p.tenants.size() - shown);
  }

  const CheckTotals totals = ComputeTotals(p);
  out += "\ntotals (all tenants; guarantees include the default tenant):\n";
  for (int d = 0; d < kDirections; ++d) {
    out += fmt::format("  {:<8}  guaranteed {} ({} of the shape rate), ceilings {} (oversubscription {:.2f}x)\n",
                       config::DirectionName(static_cast<Direction>(d)), FormatBitRate(totals.guaranteed_bps[d]),
                       Percent(totals.guaranteed_bps[d], shape), FormatBitRate(totals.ceiling_bps[d]),
                       Ratio(totals.ceiling_bps[d], shape));
  }
  return out;
}

nlohmann::json CheckJson(const std::string& file, const Policy& p, uint64_t limit) {
  const uint64_t shape = p.link.shape_rate_bps;
  nlohmann::json j;
  j["file"] = file;
  j["valid"] = true;
  j["link"] = {{"capacity_bps", p.link.capacity_bps},
               {"shape_rate_bps", shape},
               {"overhead_bytes", p.link.overhead_bytes}};
  j["classes"] = nlohmann::json::array();
  for (const config::TrafficClass& c : p.classes) {
    j["classes"].push_back({{"name", c.name},
                            {"priority", c.priority == config::Priority::kLatency ? "latency" : "bulk"},
                            {"default", c.is_default}});
  }
  j["groups"] = nlohmann::json::array();
  for (const config::Group& g : p.groups) j["groups"].push_back(g.name);
  const CheckTotals totals = ComputeTotals(p);
  for (int d = 0; d < kDirections; ++d) {
    j["totals"][config::DirectionName(static_cast<Direction>(d))] = {
        {"guaranteed_bps", totals.guaranteed_bps[d]},
        {"ceiling_bps", totals.ceiling_bps[d]},
        {"guaranteed_share", Ratio(totals.guaranteed_bps[d], shape)},
        {"oversubscription", Ratio(totals.ceiling_bps[d], shape)}};
  }
  j["tenant_count"] = p.tenants.size();
  const size_t shown = limit == 0 ? p.tenants.size() : std::min<size_t>(p.tenants.size(), limit);
  nlohmann::json tenants = nlohmann::json::array();
  for (size_t i = 0; i < shown; ++i) {
    const config::Tenant& t = p.tenants[i];
    tenants.push_back({{"name", t.name},
                       {"group", t.group == config::kNoGroup ? nlohmann::json() : nlohmann::json(GroupName(p, t.group))},
                       {"download", RatesJson(t.rates[0], shape)},
                       {"upload", RatesJson(t.rates[1], shape)}});
  }
  j["tenants"] = std::move(tenants);
  j["default_tenant"] = {{"download", RatesJson(p.default_tenant[0], shape)},
                         {"upload", RatesJson(p.default_tenant[1], shape)}};
  return j;
}

nlohmann::json ErrorsJson(const std::string& file, const config::Diagnostics& diagnostics) {
  nlohmann::json errors = nlohmann::json::array();
  for (const config::Diagnostic& d : diagnostics) {
    errors.push_back({{"line", d.line}, {"col", d.col}, {"path", d.path}, {"message", d.message},
                      {"text", d.ToString()}});
  }
  return {{"file", file}, {"valid", false}, {"errors", std::move(errors)}};
}

}  // namespace shaper::control
