#include "tests/support/powerfs.h"

#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "tests/support/eventually.h"

namespace runnel::testing {

namespace {

void require_fuse() {
  if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) {
    throw std::runtime_error(
        "powerfs needs root and /dev/fuse (apt-get install fuse3 libfuse3-dev): power-loss tests cannot run here");
  }
}

}  // namespace

powerfs_mount::powerfs_mount(std::filesystem::path mountpoint, const std::filesystem::path& seed)
    : mountpoint_(std::move(mountpoint)), control_(mountpoint_.string() + ".control") {
  require_fuse();
  std::filesystem::create_directories(mountpoint_);
  ::unlink(control_.c_str());
  std::vector<std::string> argv{RUNNEL_POWERFS_BIN, "--control", control_, mountpoint_.string()};
  if (!seed.empty()) argv.insert(argv.begin() + 1, {"--seed", seed.string()});
  process_ = std::make_unique<child_process>(argv);
  // The control socket appears once the kernel initialised the mount.
  if (!eventually([&] { return command("ping") == "ok"; }, std::chrono::seconds(10))) {
    throw std::runtime_error("runnel-powerfs did not come up on " + mountpoint_.string());
  }
}

powerfs_mount::~powerfs_mount() {
  if (process_->pid() > 0 && process_->term() == -2) process_->kill9();
  // A powerfs that died without unmounting leaves a dead mount behind.
  ::umount2(mountpoint_.c_str(), MNT_DETACH);
  ::unlink(control_.c_str());
}

std::string powerfs_mount::lose_power(const std::filesystem::path& to) {
  auto reply = command("lose-power " + to.string());
  if (!reply.starts_with("ok")) throw std::runtime_error("powerfs lose-power " + to.string() + ": " + reply);
  return reply;
}

std::string powerfs_mount::command(const std::string& line) const {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", control_.c_str());
  std::string reply;
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const auto msg = line + "\n";
    if (::write(fd, msg.data(), msg.size()) == static_cast<ssize_t>(msg.size())) {
      char ch = 0;
      while (::read(fd, &ch, 1) == 1 && ch != '\n') reply.push_back(ch);
    }
  }
  if (fd >= 0) ::close(fd);
  return reply;
}

}  // namespace runnel::testing
