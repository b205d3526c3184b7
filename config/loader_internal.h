// The loader's working state, shared by loader.cc (reading the document into
// the model) and validate.cc (defaults that depend on other sections, and the
// rules that span entities). Not part of the library's interface.
//
// Positions of fields are kept beside the model, not in it, so the model
// stays small (it lives as long as the policy); the side tables die with the
// Builder.
#pragma once

#include <array>
#include <cstdint>
#include <exception>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "config/loader.h"
#include "config/model.h"
#include "config/yaml_reader.h"

namespace shaper::config::internal {

// A value as written: pos.line == 0 means "not written".
struct Field {
  uint64_t value = 0;
  Pos pos;
};

// Rate keys of one mapping (the entity's own, or its download:/upload:).
struct RatesIn {
  Field guaranteed, ceiling, weight, burst_bytes, burst_ns;
};
struct EntityIn {
  RatesIn both;
  std::array<RatesIn, kDirections> dir;
};

// Where each direction's guaranteed and ceiling came from, for the checks
// that run once the link's shape rate is known.
struct DirectionOrigin {
  Pos guaranteed;  // line 0: default
  Pos ceiling;     // line 0: default (the shape rate)
  bool guaranteed_in_dir = false;  // written under download:/upload:
  bool ceiling_in_dir = false;
  uint64_t burst_ns = 0;  // burst as a duration (converted at the ceiling); 0: given in bytes
};
struct EntitySide {
  Pos item;  // the entity's mapping
  std::array<DirectionOrigin, kDirections> dir;
};

struct PendingRef {
  uint32_t index;  // tenant or group
  std::string name;
  Pos pos;
};

// Duplicate prefixes are found with a hash set keyed on (prefix, vlan): the
// same prefix on two VLANs is two different networks.
struct PrefixKey {
  std::array<uint8_t, 16> addr;
  uint8_t length;
  bool is_v6;
  uint16_t vlan;
  bool operator==(const PrefixKey&) const = default;
};
uint32_t HashPrefixKey(const PrefixKey& k);
struct PrefixEntry {
  PrefixKey key;
  uint32_t tenant;
  uint32_t line;
};

// An open-addressing hash set of indices into the caller's array. Why not
// std::unordered_set: a heap node per element made the duplicate checks a
// third of the load time at 1M tenants; here an element costs 8 bytes in one
// array (at most half full), and the stored hash spares most comparisons.
class IndexSet {
 public:
  // Inserts `index` unless an equal element is present; returns the index
  // of the element now in the set (`index`, or the earlier equal one).
  template <typename Equal>
  uint32_t Insert(uint32_t index, uint32_t hash, Equal&& equal) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.index_plus_1 == 0) {
        s = Slot{hash, index + 1};
        ++size_;
        return index;
      }
      if (s.hash == hash && equal(s.index_plus_1 - 1)) return s.index_plus_1 - 1;
    }
  }

 private:
  struct Slot {
    uint32_t hash;
    uint32_t index_plus_1;  // 0: empty
  };
  void Grow();
  std::vector<Slot> slots_;
  size_t size_ = 0;
};

class Builder {
 public:
  Builder(std::string_view text, std::string_view file_name, const Limits& limits);
  std::expected<Policy, Diagnostics> Run();

 private:
  struct Segment {
    std::string_view key;  // empty: an index
    uint64_t index;
  };
  class PathScope {
   public:
    PathScope(Builder* b, std::string_view key) : b_(b) { b_->path_.push_back({key, 0}); }
    PathScope(Builder* b, uint64_t index) : b_(b) { b_->path_.push_back({{}, index}); }
    ~PathScope() {
      // Unwinding from a stop: the innermost scope keeps the path for the
      // reader's diagnostic (the reader does not know the path).
      if (std::uncaught_exceptions() > 0 && !b_->stop_path_) b_->stop_path_ = b_->PathString();
      b_->path_.pop_back();
    }
    PathScope(const PathScope&) = delete;
    PathScope& operator=(const PathScope&) = delete;

   private:
    Builder* b_;
  };
  struct StopLoading {};

  // --- diagnostics (loader.cc)
  std::string PathString() const;
  void Error(Pos pos, std::string message);                       // at the current path
  void ErrorAt(Pos pos, std::string path, std::string message);   // at an explicit path
  [[noreturn]] void Fatal(Pos pos, std::string message);

  // --- reading values (loader.cc)
  // Reads a mapping's keys (its start event already read); for each known
  // key calls on_key(index into keys), which must read exactly the value.
  // Unknown and duplicate keys are reported and their values skipped.
  // Returns a bit mask of the keys seen.
  template <typename OnKey>
  uint64_t ForEachKey(std::span<const std::string_view> keys, OnKey&& on_key);
  bool ExpectMap(const Event& v);
  bool ExpectSeq(const Event& v);
  bool ReadScalar(Event* v, std::string_view what);
  bool ReadRate(Field* out, bool must_be_positive);
  bool ReadUint(Field* out, uint64_t min, uint64_t max, std::string_view what);
  bool ReadName(std::string* out, Pos* pos);
  bool ReadBurst(RatesIn* rates);
  bool ReadDuration(Field* out);
  bool ReadPercent(Field* out);
  bool ReadBytes(Field* out);
  bool ReadBool(bool* out, Pos* pos);

  // --- sections (loader.cc)
  void ParseRoot();
  void ParseLink(const Event& start);
  void ParseClasses(const Event& start);
  void ParseClass(const Event& start);
  void ParseGroups(const Event& start);
  void ParseGroup(const Event& start);
  void ParseTenants(const Event& start);
  void ParseTenant(const Event& start);
  void ParseMatch(const Event& start, uint32_t tenant);
  void ParseDefaultTenant(const Event& start);
  void ParseAllocation(const Event& start);
  // One of the rate keys (guaranteed, ceiling, weight, burst, download,
  // upload) that tenants, groups and the default tenant share.
  void ParseRateKey(std::string_view key, EntityIn* in);
  void ParseDirection(const Event& start, RatesIn* in);

  // --- after the document (validate.cc)
  void Finish();
  void ResolveGroups();
  void ResolveTenantGroups();
  void ApplyRates(const EntityIn& in, std::array<DirectionRates, kDirections>* out, EntitySide* side);
  enum class Entity : uint8_t { kTenant, kGroup, kDefaultTenant };
  std::string EntityPath(Entity entity, uint32_t index, bool in_dir, Direction d, std::string_view key) const;
  void FinishRates(Entity entity, uint32_t index, std::array<DirectionRates, kDirections>* rates,
                   const EntitySide& side);
  void CheckGuaranteeSums();
  void FinishClasses();
  std::string Describe(const Event& e) const;

  YamlReader reader_;
  std::string file_name_;
  const Limits& limits_;
  Policy policy_;
  Diagnostics diagnostics_;
  uint64_t error_count_ = 0;
  std::vector<Segment> path_;
  std::optional<std::string> stop_path_;  // the path when reading stopped

  // What the cross-section checks need from the root sections.
  bool link_ok_ = false;  // capacity parsed: shape-rate checks can run
  Field shape_at_ppm_;  // link.shape_at as a percentage, or:
  Field shape_at_bps_;  // as a rate
  Pos classes_pos_, tenants_pos_, groups_pos_;  // where those sections start
  std::vector<Pos> class_pos_;
  std::unordered_map<std::string, uint32_t> class_index_;
  std::array<int32_t, 64> dscp_owner_;  // class index, -1: none
  int32_t default_class_ = -1;          // from `default: true`

  EntityIn default_in_;
  EntitySide default_side_;
  std::vector<EntitySide> group_side_;
  std::vector<PendingRef> group_parents_;
  std::vector<Pos> group_parent_pos_;
  std::unordered_map<std::string, uint32_t> group_index_;
  std::vector<EntitySide> tenant_side_;
  std::vector<PendingRef> tenant_groups_;  // references to groups not yet read
  std::vector<Prefix> prefix_scratch_;     // one tenant's prefixes, copied at exact size
  std::vector<Pos> prefix_pos_scratch_;

  IndexSet tenant_names_;      // indices into policy_.tenants
  IndexSet prefix_set_;        // indices into prefix_entries_
  std::vector<PrefixEntry> prefix_entries_;
};

// Levenshtein distance, for "did you mean" suggestions.
size_t EditDistance(std::string_view a, std::string_view b);
// The closest candidate if it is close enough to be a typo, else empty.
std::string_view Suggest(std::string_view word, std::span<const std::string_view> candidates);

template <typename OnKey>
uint64_t Builder::ForEachKey(std::span<const std::string_view> keys, OnKey&& on_key) {
  uint64_t seen = 0;
  for (;;) {
    const Event k = reader_.Next();
    if (k.kind == EventKind::kMapEnd || k.kind == EventKind::kDocEnd) return seen;
    if (k.kind != EventKind::kScalar) {
      Error(k.pos, fmt::format("a key must be a plain name, not {}", Describe(k)));
      reader_.Skip(k);
      reader_.Skip(reader_.Next());
      continue;
    }
    size_t i = 0;
    while (i < keys.size() && keys[i] != k.text) ++i;
    if (i == keys.size()) {
      const std::string key(k.text);
      PathScope scope(this, key);
      if (key == "<<") {
        Error(k.pos, "merge keys (<<) are not supported: write the fields out");
      } else if (const std::string_view s = Suggest(key, keys); !s.empty()) {
        Error(k.pos, fmt::format("unknown key '{}'; did you mean '{}'?", key, s));
      } else {
        Error(k.pos, fmt::format("unknown key '{}'; expected one of: {}", key, fmt::join(keys, ", ")));
      }
      reader_.Skip(reader_.Next());
      continue;
    }
    PathScope scope(this, keys[i]);
    if (seen & (uint64_t{1} << i)) {
      Error(k.pos, fmt::format("duplicate key '{}'", keys[i]));
      reader_.Skip(reader_.Next());
      continue;
    }
    seen |= uint64_t{1} << i;
    on_key(i);
  }
}

}  // namespace shaper::config::internal
