// Watching the policy file for edits.
//
// The watch is on the file's DIRECTORY, not the file: editors (vim, sed -i,
// ansible, kubectl's configmap symlink swap) save by writing a new file and
// renaming it over the old one, which a watch on the old inode never sees.
// Events that concern the file's name: IN_CLOSE_WRITE (written in place),
// IN_MOVED_TO (renamed over), IN_CREATE (created anew).
#pragma once

#include <expected>
#include <memory>
#include <string>

namespace shaper::control {

class PolicyWatcher {
 public:
  static std::expected<std::unique_ptr<PolicyWatcher>, std::string> Create(const std::string& policy_path);
  ~PolicyWatcher();
  PolicyWatcher(const PolicyWatcher&) = delete;
  PolicyWatcher& operator=(const PolicyWatcher&) = delete;

  int fd() const { return fd_; }  // readable when events are pending
  // Drains pending events; true when one concerned the policy file.
  bool ReadEvents();
  // Like ReadEvents, but when the last event for the file was a bare create
  // (content still to come), drains events until none arrived for
  // `quiet_ms` (at most max_ms in all), so a half-written file is not read.
  // A rename over the file or a close after writing returns at once.
  bool ReadEventsSettled(int quiet_ms, int max_ms);

 private:
  PolicyWatcher(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int fd_;
  std::string name_;
  bool last_complete_ = false;  // the last event for the file left it whole
};

}  // namespace shaper::control
