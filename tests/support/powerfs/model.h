#pragma once
// The durability model of runnel-powerfs: an in-memory tree in which every
// file and directory has a volatile state (what reads see) and a durable
// state (what survives a power loss).
//
//   write / truncate / fallocate   -> the file's volatile bytes and size
//   fsync / fdatasync of a file    -> its volatile bytes and size become durable
//   create / mkdir / rename /
//   unlink / rmdir                 -> the volatile entries of the directories
//   fsync of a directory           -> its volatile entries become durable
//
// A power loss keeps only what is reachable from the root through durable
// entries, with each file's durable bytes (POSIX's promise, stricter than
// ext4's journal, which often carries a new entry along with a file fsync).
// Not modelled: torn or reordered writes inside what was not synced (an
// unsynced range is lost whole), ENOSPC, hard links, symlinks, xattrs.
//
// Not thread-safe: the FUSE glue holds one mutex around every call.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace runnel::powerfs {

struct node;
using node_ptr = std::shared_ptr<node>;

// A file's bytes: the volatile copy, the durable copy, and what changed in
// between, so an fsync copies the changed ranges and not the whole file.
struct file_data {
  std::vector<char> bytes;
  std::vector<char> durable;
  std::map<std::uint64_t, std::uint64_t> dirty;  // begin -> end, disjoint, merged
  std::uint64_t min_size_since_sync = 0;         // bytes past it may differ from `durable`

  void write(std::uint64_t pos, std::span<const char> in);
  void resize(std::uint64_t size);
  void sync();

 private:
  void mark_dirty(std::uint64_t begin, std::uint64_t end);
};

struct node {
  bool is_dir = false;
  mode_t mode = 0;
  timespec mtime{};
  file_data file;                          // files only
  std::map<std::string, node_ptr> entries;  // directories only: volatile
  std::map<std::string, node_ptr> durable_entries;
};

// Errors are negative errno values, as FUSE wants them.
template <class T>
using result = std::expected<T, int>;

class model {
 public:
  model();

  // Loads a directory tree from real disk as the volatile and durable state
  // (a fresh mount on what an earlier power loss left).
  [[nodiscard]] result<void> seed(const std::filesystem::path& from);

  [[nodiscard]] result<node_ptr> lookup(const char* path) const;
  [[nodiscard]] result<node_ptr> create(const char* path, mode_t mode, bool dir);
  [[nodiscard]] result<void> remove(const char* path, bool dir);
  // flags: 0 or RENAME_NOREPLACE.
  [[nodiscard]] result<void> rename(const char* from, const char* to, unsigned flags);

  static void fsync(node& n);

  // Writes the durable state to `to` (which must not exist yet) and from
  // then on refuses every call with EIO: nothing after the loss is applied.
  [[nodiscard]] result<std::string> lose_power(const std::filesystem::path& to);
  [[nodiscard]] bool lost() const { return lost_; }

  [[nodiscard]] std::uint64_t bytes_used() const;

 private:
  result<std::pair<node_ptr, std::string>> parent_of(const char* path) const;

  node_ptr root_;
  bool lost_ = false;
};

}  // namespace runnel::powerfs
