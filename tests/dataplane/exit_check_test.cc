#include "dataplane/exit_check.h"

#include <gtest/gtest.h>

namespace shaper::dataplane {
namespace {

TEST(CheckMbufsAtExit, NothingInUseIsClean) {
  const MbufExitCheck c = CheckMbufsAtExit(0, 0);
  EXPECT_TRUE(c.ok);
  EXPECT_EQ(c.line, "mbufs in use at exit: 0");
  EXPECT_EQ(CheckMbufsAtExit(0, 4096).line, "mbufs in use at exit: 0");
}

TEST(CheckMbufsAtExit, AnyMbufIsALeakWithoutAfXdpPorts) {
  const MbufExitCheck c = CheckMbufsAtExit(1, 0);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.line, "mbufs in use at exit: 1");
}

TEST(CheckMbufsAtExit, WhatTheAfXdpFillRingsKeepIsNoLeak) {
  const MbufExitCheck c = CheckMbufsAtExit(4096, 4096);
  EXPECT_TRUE(c.ok);
  EXPECT_EQ(c.line,
            "mbufs in use at exit: 4096 (all within the 4096 that DPDK 22.11's AF_XDP PMD keeps "
            "in its fill rings after close)");
  EXPECT_TRUE(CheckMbufsAtExit(2048, 4096).ok);
}

TEST(CheckMbufsAtExit, OneBeyondTheFillRingsIsALeakAndNamed) {
  const MbufExitCheck c = CheckMbufsAtExit(4098, 4096);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.line,
            "mbufs in use at exit: 4098 (2 leaked: more than the 4096 that DPDK 22.11's AF_XDP "
            "PMD keeps in its fill rings after close)");
}

}  // namespace
}  // namespace shaper::dataplane
