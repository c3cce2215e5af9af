#include "tests/support/small_filesystem.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace runnel::testing {

namespace {
constexpr const char* filler_name = ".filler";
constexpr const char* inode_fillers = ".inodes";
}

small_filesystem::small_filesystem(std::filesystem::path dir, std::uint64_t bytes, std::uint64_t inodes)
    : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  std::string opts = "size=" + std::to_string(bytes);
  if (inodes > 0) opts += ",nr_inodes=" + std::to_string(inodes);
  mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, opts.c_str()) == 0;
}

small_filesystem::~small_filesystem() {
  if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
}

std::uint64_t small_filesystem::fill(std::uint64_t leave) {
  const auto path = dir_ / filler_name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return 0;
  const std::vector<char> chunk(64 * 1024, 'f');
  for (;;) {
    if (::write(fd, chunk.data(), chunk.size()) <= 0) break;  // ENOSPC (or a short write, then ENOSPC)
  }
  const off_t size = ::lseek(fd, 0, SEEK_END);
  const off_t keep = size > static_cast<off_t>(leave) ? size - static_cast<off_t>(leave) : 0;
  (void)::ftruncate(fd, keep);
  ::close(fd);
  return static_cast<std::uint64_t>(keep);
}

std::size_t small_filesystem::fill_inodes() {
  std::filesystem::create_directories(dir_ / inode_fillers);
  std::size_t n = 0;
  for (;; ++n) {
    const auto path = dir_ / inode_fillers / std::to_string(n);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) break;
    ::close(fd);
  }
  return n;
}

void small_filesystem::unfill() {
  std::error_code ec;
  std::filesystem::remove(dir_ / filler_name, ec);
  std::filesystem::remove_all(dir_ / inode_fillers, ec);
}

std::uint64_t small_filesystem::free_bytes() const {
  struct statvfs v {};
  if (::statvfs(dir_.c_str(), &v) != 0) return 0;
  return static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
}

}  // namespace runnel::testing
