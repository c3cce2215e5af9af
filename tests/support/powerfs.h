#pragma once
// powerfs_mount: a runnel-powerfs process (tests/support/powerfs/model.h)
// serving `mountpoint`, optionally seeded from the snapshot an earlier power
// loss left. lose_power(to) writes what was durable to `to` and makes every
// later filesystem call fail, so whatever runs on the mount observes nothing
// after the loss. The destructor unmounts (SIGTERM, then a lazy umount) and
// reaps the process by PID.
//
// Needs root and /dev/fuse; without them the constructor throws with a
// message saying so, which fails the test: it never passes unrun.

#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/child_process.h"

namespace runnel::testing {

class powerfs_mount {
 public:
  explicit powerfs_mount(std::filesystem::path mountpoint, const std::filesystem::path& seed = {});
  ~powerfs_mount();
  powerfs_mount(const powerfs_mount&) = delete;             // owns a mount and a process
  powerfs_mount& operator=(const powerfs_mount&) = delete;  // owns a mount and a process
  powerfs_mount(powerfs_mount&&) = delete;                  // tests keep it in place
  powerfs_mount& operator=(powerfs_mount&&) = delete;       // tests keep it in place

  [[nodiscard]] const std::filesystem::path& path() const { return mountpoint_; }
  // The reply ("ok <n> files <m> bytes"); throws unless the loss happened.
  std::string lose_power(const std::filesystem::path& to);

 private:
  std::string command(const std::string& line) const;

  std::filesystem::path mountpoint_;
  std::string control_;
  std::unique_ptr<child_process> process_;
};

}  // namespace runnel::testing
