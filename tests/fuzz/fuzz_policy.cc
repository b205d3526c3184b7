// libFuzzer target: the YAML policy loader (config/loader.h) on arbitrary
// text, and what follows an accepted policy on the control side.
//
// Input: a policy file's bytes. LoadPolicyText must return a policy or
// diagnostics, never crash, leak or hang (its limits bound depth, aliases,
// errors and size). When it accepts the text, the plan compiler either
// compiles it or explains why not, and a compiled plan must pass the
// dataplane's own validator: a policy that loads but yields a plan the
// dataplane refuses is a bug between config/ and dataplane/ctl/ (abort).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "config/loader.h"
#include "control/dpclient/plan_compiler.h"
#include "dataplane/ctl/plan_validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  shaper::config::Limits limits;
  limits.max_file_bytes = 1 << 20;
  limits.max_tenants = 10'000;  // keeps each run fast; the limit logic is still exercised
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = shaper::config::LoadPolicyText(text, "fuzz.yaml", limits);
  if (!policy) {
    if (policy.error().empty()) {
      std::fprintf(stderr, "fuzz_policy: refused without a diagnostic\n");
      std::abort();
    }
    (void)shaper::config::FormatDiagnostics(policy.error());
    return 0;
  }
  shaper::dpclient::TenantIds ids;
  ids.Update(*policy);
  const shaper::ctl::Limits dp_limits;
  auto blob = shaper::dpclient::CompilePlan(*policy, ids, {.max_tenants = dp_limits.max_tenants});
  if (!blob) return 0;
  auto view = shaper::ctl::ValidatePlan(*blob, dp_limits);
  if (!view) {
    std::fprintf(stderr, "fuzz_policy: accepted policy compiled to a plan the dataplane refuses: %s\n",
                 view.error().c_str());
    std::abort();
  }
  return 0;
}
