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
  // Drains events until none arrived for `quiet_ms` (at most max_ms in all):
  // a save is several events (create, write, close); reloading once after
  // the last avoids reading a half-written file.
  bool ReadEventsSettled(int quiet_ms, int max_ms);

 private:
  PolicyWatcher(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int fd_;
  std::string name_;
};

}  // namespace shaper::control
