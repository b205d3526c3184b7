// shaper-plan: compile a policy into a plan, outside shaper-control.
//
//   shaper-plan POLICY.yaml -o FILE.plan               write the plan (for shaper-dataplane --plan
//   FILE) shaper-plan --push POLICY.yaml [--socket PATH]     apply it to a running dataplane, print
//   the reply shaper-plan --verify FILE.plan                     validate a plan file as the
//   dataplane would
//
// Tenant ids are assigned in policy order, as a freshly started control would;
// a long-running shaper-control keeps its own ids stable across reloads.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <string>

#include "config/loader.h"
#include "control/dpclient/dataplane_client.h"
#include "control/dpclient/plan_compiler.h"
#include "dataplane/abi/messages.h"
#include "dataplane/ctl/plan_validate.h"

namespace {

using shaper::dpclient::TenantIds;

std::expected<std::vector<std::byte>, std::string> Compile(const std::string& policy_path,
                                                           uint32_t max_tenants) {
  auto policy = shaper::config::LoadPolicyFile(policy_path);
  if (!policy) return std::unexpected(shaper::config::FormatDiagnostics(policy.error()));
  TenantIds ids;
  ids.Update(*policy);
  return shaper::dpclient::CompilePlan(*policy, ids, {.max_tenants = max_tenants});
}

int WriteFile(const std::string& path, std::span<const std::byte> bytes) {
  // Write beside the target and rename, so a dataplane never reads half a plan.
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fmt::print(stderr, "shaper-plan: {}: {}\n", tmp, std::strerror(errno));
    return 1;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fmt::print(stderr, "shaper-plan: write {}: {}\n", tmp, std::strerror(errno));
      close(fd);
      unlink(tmp.c_str());
      return 1;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    fmt::print(stderr, "shaper-plan: {}: {}\n", path, std::strerror(errno));
    unlink(tmp.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Compile a shaper policy into a dataplane plan"};
  std::string policy_path;
  std::string out_path;
  std::string push_path;
  std::string verify_path;
  std::string socket_path = shaper::abi::kDefaultSocketPath;
  uint32_t max_tenants = shaper::ctl::Limits{}.max_tenants;
  auto* policy_opt =
      app.add_option("policy", policy_path, "policy YAML to compile")->check(CLI::ExistingFile);
  auto* out_opt = app.add_option("-o,--output", out_path, "write the plan to this file");
  auto* push_opt =
      app.add_option("--push", push_path, "policy YAML to apply to a running dataplane")
          ->check(CLI::ExistingFile);
  auto* verify_opt =
      app.add_option("--verify", verify_path, "validate a plan file and summarise it")
          ->check(CLI::ExistingFile);
  app.add_option("--socket", socket_path, "dataplane control socket")->capture_default_str();
  app.add_option("--max-tenants", max_tenants, "dataplane tenant limit when writing a file")
      ->capture_default_str();
  out_opt->needs(policy_opt);
  policy_opt->excludes(push_opt)->excludes(verify_opt);
  push_opt->excludes(verify_opt);
  CLI11_PARSE(app, argc, argv);

  if (!verify_path.empty()) {
    shaper::ctl::Limits limits;
    limits.max_tenants = max_tenants;
    auto bytes = shaper::ctl::ReadPlanFile(verify_path, limits);
    if (!bytes) {
      fmt::print(stderr, "shaper-plan: {}\n", bytes.error());
      return 1;
    }
    auto view = shaper::ctl::ValidatePlan(*bytes, limits);
    if (!view) {
      fmt::print(stderr, "shaper-plan: {}: invalid: {}\n", verify_path, view.error());
      return 1;
    }
    fmt::print(
        "{}: valid plan, {} bytes, {} classes, {} tenants (ids < {}), {} prefixes, "
        "hash {:016x}\n",
        verify_path, bytes->size(), view->classes().size(), view->tenants().size(),
        view->tenant_id_limit(), view->prefixes().size(), view->policy_hash());
    return 0;
  }

  if (!push_path.empty()) {
    auto client = shaper::dpclient::DataplaneClient::Connect(socket_path);
    if (!client) {
      fmt::print(stderr, "shaper-plan: {}\n", client.error());
      return 1;
    }
    auto hello = (*client)->Hello("shaper-plan");
    if (!hello) {
      fmt::print(stderr, "shaper-plan: {}\n", hello.error());
      return 1;
    }
    auto plan = Compile(push_path, hello->max_tenants);
    if (!plan) {
      fmt::print(stderr, "shaper-plan: {}\n", plan.error());
      return 1;
    }
    auto reply = (*client)->ApplyPlan(*plan);
    if (!reply) {
      fmt::print(stderr, "shaper-plan: {}\n", reply.error());
      return 1;
    }
    fmt::print("{}\n", reply->ToString());
    return reply->ok() ? 0 : 2;
  }

  if (policy_path.empty() || out_path.empty()) {
    fmt::print(stderr,
               "shaper-plan: give POLICY.yaml -o FILE.plan, --push POLICY.yaml or "
               "--verify FILE.plan (see --help)\n");
    return 1;
  }
  auto plan = Compile(policy_path, max_tenants);
  if (!plan) {
    fmt::print(stderr, "shaper-plan: {}\n", plan.error());
    return 1;
  }
  return WriteFile(out_path, *plan);
}
