// What memory alone allows at a million tenants, measured in the same run as
// the figures it bounds.
//
// At 1M tenants nearly every frame's tenant state is out of cache, so each
// frame pays for the distinct cache lines of per-tenant state it touches.
// Two numbers bound the rate from below in time per frame:
//  - lines per frame: from the real arrays' addresses, the distinct 64-byte
//    lines one frame touches in the profile entry, the scheduler block and
//    the counters (ShaperVariant::TouchedLines), plus one for the
//    classifier's rte_fib tbl8 entry;
//  - ns per random line: independent loads to random lines of a buffer as
//    large as that state, on huge pages like it, so the core overlaps as many
//    misses as it can (the cheapest a random line gets on this machine).
// Their product is a floor on the time per frame; its inverse a ceiling on
// the rate, which shaper at 1M tenants cannot beat whatever its code does.
#pragma once

#include <cstdint>

namespace shaper::bench {

struct RandomLineCost {
  double ns_per_line = 0;
  uint64_t buffer_bytes = 0;
};

// `loads` independent loads over `buffer_bytes`, three times, timed in
// chunks: the fastest chunk's cost per line.
RandomLineCost MeasureRandomLineCost(uint64_t buffer_bytes, uint64_t loads, uint64_t tsc_hz);

}  // namespace shaper::bench
