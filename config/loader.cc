// Reading a policy document into the model, straight from the YAML event
// stream (see yaml_reader.h for why there is no document tree).
//
// Each section has a Parse function that reads exactly one value node. An
// error is recorded with its position and field path and reading goes on
// with the next key, so one file gives all its errors at once. Checks that
// need other sections (the link's shape rate, groups defined after the
// tenants that use them) run after the document, in validate.cc.
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "config/loader.h"
#include "config/loader_internal.h"
#include "config/prefix.h"
#include "config/units.h"

namespace shaper::config {

std::string Diagnostic::ToString() const {
  std::string s = file;
  if (line != 0) s += fmt::format(":{}:{}", line, col);
  s += ": ";
  if (!path.empty()) {
    s += path;
    s += ": ";
  }
  s += message;
  return s;
}

std::string FormatDiagnostics(const Diagnostics& diagnostics) {
  std::string out;
  for (const Diagnostic& d : diagnostics) {
    out += d.ToString();
    out += '\n';
  }
  return out;
}

namespace internal {
namespace {

constexpr size_t kMaxNameBytes = 64;

constexpr std::string_view kRootKeys[] = {"version", "link",           "classes",   "groups",
                                          "tenants", "default_tenant", "allocation"};

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

}  // namespace

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string_view Suggest(std::string_view word, std::span<const std::string_view> candidates) {
  std::string_view best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (std::string_view c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_distance && d < std::max(word.size(), c.size())) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

uint32_t HashPrefixKey(const PrefixKey& k) {
  // FNV-1a over the key's bytes, folded to 32 bits.
  uint64_t h = 1469598103934665603ull;
  const auto mix = [&h](uint8_t byte) { h = (h ^ byte) * 1099511628211ull; };
  for (uint8_t byte : k.addr) mix(byte);
  mix(k.length);
  mix(static_cast<uint8_t>(k.is_v6));
  mix(static_cast<uint8_t>(k.vlan));
  mix(static_cast<uint8_t>(k.vlan >> 8));
  return static_cast<uint32_t>(h ^ (h >> 32));
}

void IndexSet::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{0, 0});
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.index_plus_1 == 0) continue;
    size_t i = s.hash & mask;
    while (slots_[i].index_plus_1 != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

Builder::Builder(std::string_view text, std::string_view file_name, const Limits& limits)
    : reader_(text, limits), file_name_(file_name), limits_(limits) {
  dscp_owner_.fill(-1);
}

std::string Builder::PathString() const {
  std::string s;
  for (const Segment& seg : path_) {
    if (seg.key.empty()) {
      s += fmt::format("[{}]", seg.index);
    } else {
      if (!s.empty()) s += '.';
      s += seg.key;
    }
  }
  return s;
}

void Builder::Error(Pos pos, std::string message) { ErrorAt(pos, PathString(), std::move(message)); }

void Builder::ErrorAt(Pos pos, std::string path, std::string message) {
  // A rule broken by a field written once for both directions is reported once.
  if (!diagnostics_.empty()) {
    const Diagnostic& last = diagnostics_.back();
    if (last.line == pos.line && last.col == pos.col && last.path == path && last.message == message) return;
  }
  ++error_count_;
  if (diagnostics_.size() >= limits_.max_errors) return;
  diagnostics_.push_back(Diagnostic{file_name_, pos.line, pos.col, std::move(path), std::move(message)});
}

void Builder::Fatal(Pos pos, std::string message) {
  Error(pos, std::move(message));
  throw StopLoading{};
}

std::string Builder::Describe(const Event& e) const {
  switch (e.kind) {
    case EventKind::kScalar:
      return e.text.empty() ? std::string("an empty value") : fmt::format("\"{}\"", e.text);
    case EventKind::kMapStart:
      return "a mapping";
    case EventKind::kSeqStart:
      return "a list";
    default:
      return "nothing";
  }
}

bool Builder::ExpectMap(const Event& v) {
  if (v.kind == EventKind::kMapStart) return true;
  Error(v.pos, fmt::format("expected a mapping (key: value), got {}", Describe(v)));
  reader_.Skip(v);
  return false;
}

bool Builder::ExpectSeq(const Event& v) {
  if (v.kind == EventKind::kSeqStart) return true;
  Error(v.pos, fmt::format("expected a list, got {}", Describe(v)));
  reader_.Skip(v);
  return false;
}

bool Builder::ReadScalar(Event* v, std::string_view what) {
  *v = reader_.Next();
  if (v->kind == EventKind::kScalar) return true;
  Error(v->pos, fmt::format("expected {}, got {}", what, Describe(*v)));
  reader_.Skip(*v);
  return false;
}

bool Builder::ReadRate(Field* out, bool must_be_positive) {
  Event v;
  if (!ReadScalar(&v, "a bit rate such as 100Mbit")) return false;
  auto rate = ParseBitRate(v.text);
  if (!rate) {
    Error(v.pos, std::move(rate.error()));
    return false;
  }
  if (must_be_positive && *rate == 0) {
    Error(v.pos, fmt::format("\"{}\" must be more than 0bit", v.text));
    return false;
  }
  *out = Field{*rate, v.pos};
  return true;
}

bool Builder::ReadUint(Field* out, uint64_t min, uint64_t max, std::string_view what) {
  Event v;
  if (!ReadScalar(&v, fmt::format("{} (a whole number)", what))) return false;
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
  if (ec != std::errc() || end != v.text.data() + v.text.size() || v.text.empty() || n < min || n > max) {
    Error(v.pos, fmt::format("{} \"{}\" must be a whole number from {} to {}", what, v.text, min, max));
    return false;
  }
  *out = Field{n, v.pos};
  return true;
}

bool Builder::ReadName(std::string* out, Pos* pos) {
  Event v;
  if (!ReadScalar(&v, "a name")) return false;
  *pos = v.pos;
  if (!ValidName(v.text)) {
    Error(v.pos, fmt::format("name \"{}\" must be 1 to {} letters, digits, '-', '_' or '.'", v.text,
                             kMaxNameBytes));
    return false;
  }
  out->assign(v.text);
  return true;
}

bool Builder::ReadDuration(Field* out) {
  Event v;
  if (!ReadScalar(&v, "a duration such as 5ms")) return false;
  auto ns = ParseDuration(v.text);
  if (!ns) {
    Error(v.pos, std::move(ns.error()));
    return false;
  }
  *out = Field{*ns, v.pos};
  return true;
}

bool Builder::ReadPercent(Field* out) {
  Event v;
  if (!ReadScalar(&v, "a percentage such as 20%")) return false;
  auto ppm = ParsePercent(v.text);
  if (!ppm) {
    Error(v.pos, std::move(ppm.error()));
    return false;
  }
  *out = Field{*ppm, v.pos};
  return true;
}

bool Builder::ReadBytes(Field* out) {
  Event v;
  if (!ReadScalar(&v, "a size such as 24B")) return false;
  auto bytes = ParseBytes(v.text);
  if (!bytes) {
    Error(v.pos, std::move(bytes.error()));
    return false;
  }
  *out = Field{*bytes, v.pos};
  return true;
}

bool Builder::ReadBool(bool* out, Pos* pos) {
  Event v;
  if (!ReadScalar(&v, "true or false")) return false;
  *pos = v.pos;
  if (v.text == "true") {
    *out = true;
  } else if (v.text == "false") {
    *out = false;
  } else {
    Error(v.pos, fmt::format("expected true or false, got \"{}\"", v.text));
    return false;
  }
  return true;
}

// A burst is a duration at the ceiling rate (how long a tenant may send at
// line rate after being idle) or a size in bytes.
bool Builder::ReadBurst(RatesIn* rates) {
  Event v;
  if (!ReadScalar(&v, "a duration such as 5ms or a size such as 64KB")) return false;
  if (auto ns = ParseDuration(v.text)) {
    if (*ns == 0) {
      Error(v.pos, "burst must be more than 0");
      return false;
    }
    rates->burst_ns = Field{*ns, v.pos};
    rates->burst_bytes = Field{};
    return true;
  }
  auto bytes = ParseBytes(v.text);
  if (!bytes) {
    Error(v.pos, fmt::format("burst \"{}\" is neither a duration ({}) nor a size ({})", v.text,
                             "ns, us, ms, s: time at the ceiling rate", "B, KB, MB, KiB, MiB"));
    return false;
  }
  if (*bytes == 0) {
    Error(v.pos, "burst must be more than 0");
    return false;
  }
  rates->burst_bytes = Field{*bytes, v.pos};
  rates->burst_ns = Field{};
  return true;
}

void Builder::ParseRoot() {
  const Event root = reader_.Next();
  if (root.kind == EventKind::kDocEnd) {
    Error(Pos{}, "the file is empty: a policy needs version, link, classes and tenants");
    return;
  }
  if (!ExpectMap(root)) return;
  const uint64_t seen = ForEachKey(kRootKeys, [&](size_t key) {
    switch (key) {
      case 0: {
        Field version;
        if (ReadUint(&version, 0, UINT32_MAX, "version") && version.value != 1) {
          Error(version.pos, fmt::format("unsupported version {}: this shaper reads version 1", version.value));
        }
        break;
      }
      case 1: ParseLink(reader_.Next()); break;
      case 2: ParseClasses(reader_.Next()); break;
      case 3: ParseGroups(reader_.Next()); break;
      case 4: ParseTenants(reader_.Next()); break;
      case 5: ParseDefaultTenant(reader_.Next()); break;
      default: ParseAllocation(reader_.Next()); break;
    }
  });
  for (size_t key : {0, 1, 2, 4}) {
    if (!(seen & (uint64_t{1} << key))) Error(root.pos, fmt::format("missing required key '{}'", kRootKeys[key]));
  }
}

std::expected<Policy, Diagnostics> Builder::Run() {
  try {
    ParseRoot();
    reader_.Next();  // the end of the document: a second document is an error
    Finish();
  } catch (const StopReading&) {
    if (reader_.stop_is_syntax()) {
      // The file is not a YAML document: errors found before the syntax
      // error are often its echoes (a mis-indented line read as part of a
      // value), so the syntax error stands alone.
      diagnostics_.clear();
      error_count_ = 0;
      ErrorAt(reader_.stop_pos(), {}, reader_.stop_message());
    } else {
      ErrorAt(reader_.stop_pos(), stop_path_.value_or(PathString()), reader_.stop_message());
    }
  } catch (const StopLoading&) {
    // Already reported.
  }
  if (error_count_ == 0) return std::move(policy_);
  // In file order: checks that run after the document found their errors last.
  std::stable_sort(diagnostics_.begin(), diagnostics_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.line != b.line ? a.line < b.line : a.col < b.col;
  });
  if (error_count_ > diagnostics_.size()) {
    diagnostics_.push_back(Diagnostic{file_name_, 0, 0, {},
                                      fmt::format("{} more errors not shown (limit max_errors = {})",
                                                  error_count_ - diagnostics_.size(), limits_.max_errors)});
  }
  return std::unexpected(std::move(diagnostics_));
}

}  // namespace internal

std::expected<Policy, Diagnostics> LoadPolicyText(std::string_view text, std::string_view file_name,
                                                  const Limits& limits) {
  if (text.size() > limits.max_file_bytes) {
    return std::unexpected(Diagnostics{Diagnostic{
        std::string(file_name), 0, 0, {},
        fmt::format("the file is {} bytes, more than the limit of {} (max_file_bytes)", text.size(),
                    limits.max_file_bytes)}});
  }
  internal::Builder builder(text, file_name, limits);
  return builder.Run();
}

std::expected<Policy, Diagnostics> LoadPolicyFile(const std::string& path, const Limits& limits) {
  const auto fail = [&](std::string message) {
    return std::unexpected(Diagnostics{Diagnostic{path, 0, 0, {}, std::move(message)}});
  };
  // Size first: a hostile or mistaken path (a disk image, /dev/zero) must
  // not be read into memory.
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return fail(fmt::format("cannot open: {}", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > limits.max_file_bytes) {
    return fail(fmt::format("the file is {} bytes, more than the limit of {} (max_file_bytes)",
                            static_cast<uint64_t>(st.st_size), limits.max_file_bytes));
  }
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return fail(fmt::format("cannot open: {}", std::strerror(errno)));
  std::string text(static_cast<size_t>(st.st_size), '\0');
  const size_t n = std::fread(text.data(), 1, text.size(), f.get());
  if (n != text.size()) return fail("short read (the file changed while being read?)");
  return LoadPolicyText(text, path, limits);
}

}  // namespace shaper::config