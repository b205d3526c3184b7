#include "control/daemon/watcher.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace shaper::control {

std::expected<std::unique_ptr<PolicyWatcher>, std::string> PolicyWatcher::Create(const std::string& policy_path) {
  const std::filesystem::path path(policy_path);
  // "policy.yaml" alone lives in the working directory.
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::current_path();
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return std::unexpected(fmt::format("inotify_init1: {}", std::strerror(errno)));
  if (inotify_add_watch(fd, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
    const int err = errno;
    close(fd);
    return std::unexpected(fmt::format("watching policy directory '{}': {}", dir.string(), std::strerror(err)));
  }
  return std::unique_ptr<PolicyWatcher>(new PolicyWatcher(fd, path.filename().string()));
}

PolicyWatcher::~PolicyWatcher() { close(fd_); }

bool PolicyWatcher::ReadEvents() {
  alignas(inotify_event) char buf[16 * 1024];
  bool relevant = false;
  for (;;) {
    const ssize_t n = read(fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      if (ev->len > 0 && name_ == ev->name) {
        relevant = true;
        // A rename over the file, or a writer closing it, leaves it whole; a
        // bare create means the content is still to come.
        last_complete_ = (ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)) != 0;
      }
      // The queue overflowed: an event for our file may have been lost.
      if (ev->mask & IN_Q_OVERFLOW) relevant = true;
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
  }
  return relevant;
}

bool PolicyWatcher::ReadEventsSettled(int quiet_ms, int max_ms) {
  last_complete_ = false;
  bool relevant = ReadEvents();
  // Events for other names (an editor's temporary file) start no wait, and a
  // file that is already whole is reloaded at once: the quiet wait is only for
  // a file still being written, so an edit is in force well within two
  // allocation intervals.
  if (!relevant || last_complete_) return relevant;
  for (int waited = 0; waited < max_ms; waited += quiet_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, quiet_ms) <= 0) break;
    relevant = ReadEvents() || relevant;
  }
  return relevant;
}

}  // namespace shaper::control
