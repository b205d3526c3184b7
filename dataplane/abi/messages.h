// Messages on the control socket (AF_UNIX, SOCK_SEQPACKET: one message per
// send, boundaries kept, so no framing layer). Control sends a request, the
// dataplane answers with exactly one reply; requests are handled in order.
//
//   HelloRequest      -> HelloReply   + SCM_RIGHTS: the stats segment fd (read-only use)
//   ApplyPlanRequest  + SCM_RIGHTS: a sealed memfd holding a plan blob (plan.h)
//                     -> Reply (generation of the plan now in force)
//   UpdateRatesRequest + SCM_RIGHTS: a sealed memfd holding a rates blob (plan.h)
//                     -> Reply
//
// Payload memfds must carry F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL:
// the dataplane reads the blob in place after validating it, and the seals
// guarantee nobody can change it between validation and use.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/abi/plan.h"
#include "dataplane/abi/stats.h"

namespace shaper::abi {

inline constexpr const char* kDefaultSocketPath = "/run/shaper/dataplane.sock";
inline constexpr uint32_t kMsgMagic = 0x4753534d;  // "MSSG" little-endian
inline constexpr uint32_t kErrorTextBytes = 256;
inline constexpr uint32_t kVersionTextBytes = 32;
inline constexpr uint32_t kPortNameBytes = 32;
// Larger than any message: a receiver reads into a buffer this size and
// detects truncation (MSG_TRUNC).
inline constexpr uint32_t kMaxMessageBytes = 4096;

enum class MsgType : uint16_t {
  kHello = 1,
  kHelloReply = 2,
  kApplyPlan = 3,
  kUpdateRates = 4,
  kReply = 5,
};

struct MsgHeader {
  uint32_t magic;        // kMsgMagic
  uint16_t abi_version;  // kAbiVersion of the sender
  uint16_t type;         // MsgType
  uint32_t bytes;        // size of the whole message, header included
  uint32_t seq;          // chosen by the client, echoed in the reply
};
static_assert(sizeof(MsgHeader) == 16);

struct HelloRequest {
  MsgHeader header;
  char client_name[kVersionTextBytes];  // for the dataplane's log; NUL-terminated
};
static_assert(sizeof(HelloRequest) == 48);

struct HelloReply {
  MsgHeader header;
  uint32_t abi_version;  // kAbiVersion of the dataplane
  uint32_t num_ports;
  uint32_t max_tenants;  // limits the validator applies
  uint32_t max_classes;
  uint32_t max_prefixes;
  uint32_t num_lcores;
  uint64_t max_plan_bytes;
  uint64_t plan_generation;  // plan in force, 0 = none
  uint64_t stats_bytes;      // size of the stats segment passed with this reply
  char dataplane_version[kVersionTextBytes];
  char port_names[kMaxPorts][kPortNameBytes];  // num_ports used, NUL-terminated
};
static_assert(sizeof(HelloReply) == 608);
static_assert(offsetof(HelloReply, dataplane_version) == 64);

// The payload (plan or rates blob) is the memfd; its size is restated here so
// a mismatch with fstat() is caught.
struct PayloadRequest {
  MsgHeader header;
  uint64_t payload_bytes;
};
static_assert(sizeof(PayloadRequest) == 24);
using ApplyPlanRequest = PayloadRequest;
using UpdateRatesRequest = PayloadRequest;

enum class Result : int32_t {
  kOk = 0,
  kBadRequest = 1,  // malformed message, missing or unsealed fd, wrong size
  kInvalid = 2,     // the blob failed validation; the error names the field
  kRejected = 3,    // valid, but the dataplane could not apply it (e.g. out of memory)
  kStale = 4,       // rates for a plan generation that is not in force
  kVersion = 5,     // ABI version mismatch
};
inline constexpr const char* ResultName(Result r) {
  switch (r) {
    case Result::kOk:
      return "ok";
    case Result::kBadRequest:
      return "bad_request";
    case Result::kInvalid:
      return "invalid";
    case Result::kRejected:
      return "rejected";
    case Result::kStale:
      return "stale";
    case Result::kVersion:
      return "version";
  }
  return "?";
}

struct Reply {
  MsgHeader header;
  int32_t result;  // Result
  uint32_t reserved;
  uint64_t generation;          // plan generation in force after the request
  char error[kErrorTextBytes];  // empty on success; NUL-terminated
};
static_assert(sizeof(Reply) == 288);

}  // namespace shaper::abi
