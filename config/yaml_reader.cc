#include "config/yaml_reader.h"

#include <fmt/format.h>

namespace shaper::config::internal {
namespace {

Pos ToPos(const yaml_mark_t& mark) {
  return Pos{static_cast<uint32_t>(mark.line + 1), static_cast<uint32_t>(mark.column + 1)};
}

std::string_view View(const yaml_char_t* s) {
  return s == nullptr ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(s));
}

}  // namespace

YamlReader::YamlReader(std::string_view text, const Limits& limits) : limits_(limits) {
  yaml_parser_initialize(&parser_);
  yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()), text.size());
}

YamlReader::~YamlReader() {
  if (have_event_) yaml_event_delete(&event_);
  yaml_parser_delete(&parser_);
}

void YamlReader::Stop(Pos pos, std::string message) {
  stop_pos_ = pos;
  stop_message_ = std::move(message);
  done_ = true;
  replay_.clear();
  throw StopReading{};
}

void YamlReader::StartAlias(std::string_view name, Pos pos) {
  if (++aliases_ > limits_.max_aliases) {
    Stop(pos, fmt::format("more than {} alias uses (limit max_aliases), counting aliases inside "
                          "aliased nodes: the file expands too much",
                          limits_.max_aliases));
  }
  auto it = anchors_.find(std::string(name));
  if (it == anchors_.end()) Stop(pos, fmt::format("alias *{} refers to no anchor defined before it", name));
  replay_.push_back(Replay{&it->second, 0, pos});
}

void YamlReader::Record(EventKind kind, Pos pos, std::string_view text) {
  for (Recording& r : recording_) r.events.push_back(Recorded{kind, pos, std::string(text)});
}

Event YamlReader::Track(Event e) {
  switch (e.kind) {
    case EventKind::kMapStart:
    case EventKind::kSeqStart:
      if (++depth_ > limits_.max_depth) {
        Stop(e.pos, fmt::format("nesting deeper than {} levels (limit max_depth)", limits_.max_depth));
      }
      break;
    case EventKind::kMapEnd:
    case EventKind::kSeqEnd:
      if (replay_.empty() && !recording_.empty() && recording_.back().depth == depth_) {
        anchors_[recording_.back().anchor] = std::move(recording_.back().events);
        recording_.pop_back();
      }
      --depth_;
      break;
    case EventKind::kScalar:
    case EventKind::kDocEnd:
      break;
  }
  if (depth_ == 0) root_done_ = true;
  return e;
}

Event YamlReader::Next() {
  for (;;) {
    if (!replay_.empty()) {
      Replay& r = replay_.back();
      if (r.next == r.events->size()) {
        replay_.pop_back();
        continue;
      }
      const Recorded& rec = (*r.events)[r.next++];
      const Pos alias_pos = r.pos;
      if (rec.kind == EventKind::kDocEnd) {
        StartAlias(rec.text, alias_pos);  // may grow replay_: `r` is not used after this
        continue;
      }
      return Track(Event{rec.kind, alias_pos, rec.text});
    }
    if (done_) return Event{};

    if (have_event_) yaml_event_delete(&event_);
    have_event_ = false;
    if (yaml_parser_parse(&parser_, &event_) == 0) {
      std::string message = fmt::format("syntax error: {}", parser_.problem ? parser_.problem : "invalid YAML");
      if (parser_.context != nullptr) message += fmt::format(" ({})", parser_.context);
      stop_is_syntax_ = true;
      Stop(ToPos(parser_.problem_mark), std::move(message));
    }
    have_event_ = true;
    const Pos pos = ToPos(event_.start_mark);
    if (root_done_) {
      // Only the end of the document and of the stream may follow the root.
      if (event_.type == YAML_DOCUMENT_START_EVENT) {
        Stop(pos, "a policy file holds one YAML document; a second one starts here");
      }
      if (event_.type == YAML_STREAM_END_EVENT) done_ = true;
      continue;
    }
    switch (event_.type) {
      case YAML_NO_EVENT:
      case YAML_STREAM_START_EVENT:
      case YAML_DOCUMENT_START_EVENT:
      case YAML_DOCUMENT_END_EVENT:
        continue;
      case YAML_STREAM_END_EVENT:
        done_ = true;
        continue;
      case YAML_ALIAS_EVENT: {
        const std::string_view name = View(event_.data.alias.anchor);
        Record(EventKind::kDocEnd, pos, name);
        StartAlias(name, pos);
        continue;
      }
      case YAML_SCALAR_EVENT: {
        const std::string_view text(reinterpret_cast<const char*>(event_.data.scalar.value),
                                    event_.data.scalar.length);
        Record(EventKind::kScalar, pos, text);
        if (event_.data.scalar.anchor != nullptr) {
          anchors_[std::string(View(event_.data.scalar.anchor))] = {Recorded{EventKind::kScalar, pos, std::string(text)}};
        }
        return Track(Event{EventKind::kScalar, pos, text});
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        const bool is_map = event_.type == YAML_MAPPING_START_EVENT;
        const EventKind kind = is_map ? EventKind::kMapStart : EventKind::kSeqStart;
        const yaml_char_t* anchor = is_map ? event_.data.mapping_start.anchor : event_.data.sequence_start.anchor;
        Event e = Track(Event{kind, pos, {}});
        // The anchored node's own start event is the first it records.
        if (anchor != nullptr) recording_.push_back(Recording{std::string(View(anchor)), depth_, {}});
        Record(kind, pos, {});
        return e;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        const EventKind kind = event_.type == YAML_MAPPING_END_EVENT ? EventKind::kMapEnd : EventKind::kSeqEnd;
        Record(kind, pos, {});
        return Track(Event{kind, pos, {}});
      }
    }
  }
}

void YamlReader::Skip(const Event& first) {
  if (first.kind != EventKind::kMapStart && first.kind != EventKind::kSeqStart) return;
  int open = 1;
  while (open > 0) {
    const Event e = Next();
    if (e.kind == EventKind::kMapStart || e.kind == EventKind::kSeqStart) ++open;
    if (e.kind == EventKind::kMapEnd || e.kind == EventKind::kSeqEnd) --open;
    if (e.kind == EventKind::kDocEnd) return;
  }
}

}  // namespace shaper::config::internal
