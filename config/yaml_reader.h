// A pull reader over libyaml's event parser, with the limits that keep a
// hostile policy file from costing memory or time.
//
// Why not yaml-cpp's Node API (or its event handler)? Measured on a policy of
// 100k tenants (13 MB): yaml-cpp's scanner alone takes 1.5 s, building Nodes
// 4.4 s; libyaml's parser takes 0.23 s. The loader's budget is 1 s for 100k
// tenants, so the loader reads events from libyaml and builds the model
// directly, never a document tree. See tests/bench/config/.
//
// What this layer adds over libyaml:
//  - 1-based positions on every event;
//  - nesting depth checked on every start event, before anything is built;
//  - anchors and aliases: an anchored node's events are recorded (aliases
//    inside it stay aliases, so recording is linear in the text) and an
//    alias replays them. Every alias use, including those met while
//    replaying, counts against Limits::max_aliases: a "billion laughs" file
//    stops after max_aliases steps, in microseconds;
//  - exactly one document per file.
// A syntax error or a limit throws StopReading; the reader keeps the
// position and message.
#pragma once

#include <yaml.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/loader.h"

namespace shaper::config::internal {

struct Pos {
  uint32_t line = 0;  // 1-based; 0 = not set
  uint32_t col = 0;   // 1-based
};

enum class EventKind : uint8_t { kScalar, kMapStart, kMapEnd, kSeqStart, kSeqEnd, kDocEnd };

struct Event {
  EventKind kind = EventKind::kDocEnd;
  Pos pos;
  std::string_view text;  // scalars only; valid until the next call to Next()
};

struct StopReading {};

class YamlReader {
 public:
  YamlReader(std::string_view text, const Limits& limits);
  ~YamlReader();
  YamlReader(const YamlReader&) = delete;
  YamlReader& operator=(const YamlReader&) = delete;

  // The next event of the document. After the root node, kDocEnd (again on
  // every later call). Throws StopReading.
  Event Next();
  // Consumes the rest of the node whose first event was `first`.
  void Skip(const Event& first);

  Pos stop_pos() const { return stop_pos_; }
  const std::string& stop_message() const { return stop_message_; }
  bool stop_is_syntax() const { return stop_is_syntax_; }

 private:
  struct Recorded {
    EventKind kind;  // kDocEnd marks an alias (text = anchor name)
    Pos pos;
    std::string text;
  };
  struct Recording {
    std::string anchor;
    uint32_t depth;  // depth after the start event
    std::vector<Recorded> events;
  };
  struct Replay {
    const std::vector<Recorded>* events;
    size_t next;
    Pos pos;  // the alias: replayed events are reported where they are used
  };

  [[noreturn]] void Stop(Pos pos, std::string message);
  void StartAlias(std::string_view name, Pos pos);
  void Record(EventKind kind, Pos pos, std::string_view text);
  Event Track(Event e);  // depth limit

  yaml_parser_t parser_;
  yaml_event_t event_;
  bool have_event_ = false;
  bool done_ = false;
  bool root_done_ = false;  // the root node is complete
  uint32_t depth_ = 0;
  uint32_t aliases_ = 0;
  const Limits& limits_;
  std::vector<Recording> recording_;
  std::vector<Replay> replay_;
  std::unordered_map<std::string, std::vector<Recorded>> anchors_;
  Pos stop_pos_;
  std::string stop_message_;
  bool stop_is_syntax_ = false;
};

}  // namespace shaper::config::internal
