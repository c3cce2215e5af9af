#pragma once
// small_filesystem: a size-limited tmpfs the test mounts (root;
// ../shared/MACHINE.md), for full-disk tests. Unmounted when it goes.
// fill() takes all of its free space but `leave` bytes with a file of its
// own, fill_inodes() every free inode with empty files, and unfill() gives
// both back.

#include <cstdint>
#include <filesystem>

namespace runnel::testing {

class small_filesystem {
 public:
  // `inodes` > 0 limits the files it can hold (tmpfs nr_inodes).
  small_filesystem(std::filesystem::path dir, std::uint64_t bytes, std::uint64_t inodes = 0);
  ~small_filesystem();
  small_filesystem(const small_filesystem&) = delete;             // owns a mount
  small_filesystem& operator=(const small_filesystem&) = delete;  // owns a mount

  [[nodiscard]] bool mounted() const { return mounted_; }
  // Writes a filler file until the filesystem is full, then cuts it so
  // that about `leave` bytes stay free. Returns the filler's size.
  std::uint64_t fill(std::uint64_t leave = 0);
  // Creates empty files until no inode is left; returns how many.
  std::size_t fill_inodes();
  void unfill();
  // Free bytes as statvfs(3) reports them.
  [[nodiscard]] std::uint64_t free_bytes() const;

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

}  // namespace runnel::testing
