// shaper-bench --accuracy: does shaper give each tenant what the sharing
// rule (docs/DESIGN "Scheduling model") says it should?
//
// A low link rate (100 Mbit/s) and a paced offered load (twice the link,
// split unevenly over four tenants) keep the result independent of the CPU:
// the core is idle most of the time, so every figure is a shaping decision,
// not a lack of cycles. Each tenant's achieved rate is compared with the
// weighted max-min reference computed here from its offered load, assured
// rate, ceiling and weight.
#pragma once

#include <cstdint>
#include <vector>

#include "tests/bench/dataplane/bench_env.h"
#include "tests/bench/dataplane/maxmin.h"

namespace shaper::bench {

// Returns the process exit code.
int RunAccuracy(const BenchEnv& env, bool json, uint64_t seed);

}  // namespace shaper::bench
