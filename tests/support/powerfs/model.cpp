#include "tests/support/powerfs/model.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace runnel::powerfs {

namespace {

timespec now() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

node_ptr make_node(bool dir, mode_t mode) {
  auto n = std::make_shared<node>();
  n->is_dir = dir;
  n->mode = (dir ? S_IFDIR : S_IFREG) | (mode & 07777);
  n->mtime = now();
  return n;
}

// Splits "/a/b/c" into its components; "/" has none.
std::vector<std::string> components(const char* path) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = path; *p != 0; ++p) {
    if (*p == '/') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(*p);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// Writes what survives the loss: durable entries, durable bytes.
result<void> write_durable(const node& dir, const std::filesystem::path& to, std::uint64_t& files, std::uint64_t& bytes) {
  if (::mkdir(to.c_str(), dir.mode & 07777) != 0) return std::unexpected(-errno);
  for (const auto& [name, child] : dir.durable_entries) {
    const auto path = to / name;
    if (child->is_dir) {
      if (auto r = write_durable(*child, path, files, bytes); !r) return r;
      continue;
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(child->file.durable.data(), static_cast<std::streamsize>(child->file.durable.size()));
    if (!out) return std::unexpected(-EIO);
    ::chmod(path.c_str(), child->mode & 07777);
    ++files;
    bytes += child->file.durable.size();
  }
  return {};
}

result<void> read_tree(node& dir, const std::filesystem::path& from) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(from, ec)) {
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) != 0) return std::unexpected(-errno);
    const bool is_dir = S_ISDIR(st.st_mode);
    if (!is_dir && !S_ISREG(st.st_mode)) return std::unexpected(-EINVAL);  // links etc. are not modelled
    auto child = make_node(is_dir, st.st_mode);
    if (is_dir) {
      if (auto r = read_tree(*child, e.path()); !r) return r;
    } else {
      std::ifstream in(e.path(), std::ios::binary);
      child->file.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      child->file.durable = child->file.bytes;
      child->file.min_size_since_sync = child->file.bytes.size();
    }
    dir.entries[e.path().filename()] = child;
  }
  if (ec) return std::unexpected(-ec.value());
  dir.durable_entries = dir.entries;
  return {};
}

std::uint64_t used(const node& n) {
  std::uint64_t sum = n.file.bytes.size();
  for (const auto& [name, child] : n.entries) sum += used(*child);
  return sum;
}

}  // namespace

void file_data::mark_dirty(std::uint64_t begin, std::uint64_t end) {
  if (begin >= end) return;
  // Merge with every range that touches [begin, end).
  auto it = dirty.upper_bound(begin);
  if (it != dirty.begin() && std::prev(it)->second >= begin) --it;
  while (it != dirty.end() && it->first <= end) {
    begin = std::min(begin, it->first);
    end = std::max(end, it->second);
    it = dirty.erase(it);
  }
  dirty.emplace(begin, end);
}

void file_data::write(std::uint64_t pos, std::span<const char> in) {
  const auto end = pos + in.size();
  if (end > bytes.size()) {
    // A write past the end leaves a hole of zeros, which is new data too.
    mark_dirty(bytes.size(), pos);
    bytes.resize(end);
  }
  std::copy(in.begin(), in.end(), bytes.begin() + static_cast<std::ptrdiff_t>(pos));
  mark_dirty(pos, end);
}

void file_data::resize(std::uint64_t size) {
  if (size < bytes.size()) {
    min_size_since_sync = std::min(min_size_since_sync, size);
    // Ranges past the new end describe bytes that no longer exist.
    while (!dirty.empty() && std::prev(dirty.end())->first >= size) dirty.erase(std::prev(dirty.end()));
    if (!dirty.empty() && std::prev(dirty.end())->second > size) std::prev(dirty.end())->second = size;
  } else {
    mark_dirty(bytes.size(), size);
  }
  bytes.resize(size);
}

void file_data::sync() {
  // Bytes past the smallest size since the last sync may have been cut and
  // regrown: drop them from the durable copy, then copy what changed.
  durable.resize(std::min<std::uint64_t>(durable.size(), min_size_since_sync));
  durable.resize(bytes.size());
  for (const auto& [begin, end] : dirty) {
    std::copy(bytes.begin() + static_cast<std::ptrdiff_t>(begin), bytes.begin() + static_cast<std::ptrdiff_t>(end),
              durable.begin() + static_cast<std::ptrdiff_t>(begin));
  }
  dirty.clear();
  min_size_since_sync = bytes.size();
}

model::model() : root_(make_node(true, 0755)) {}

result<void> model::seed(const std::filesystem::path& from) { return read_tree(*root_, from); }

result<node_ptr> model::lookup(const char* path) const {
  node_ptr cur = root_;
  for (const auto& name : components(path)) {
    if (!cur->is_dir) return std::unexpected(-ENOTDIR);
    auto it = cur->entries.find(name);
    if (it == cur->entries.end()) return std::unexpected(-ENOENT);
    cur = it->second;
  }
  return cur;
}

result<std::pair<node_ptr, std::string>> model::parent_of(const char* path) const {
  auto parts = components(path);
  if (parts.empty()) return std::unexpected(-EBUSY);  // the root has no parent entry
  std::string name = std::move(parts.back());
  parts.pop_back();
  node_ptr cur = root_;
  for (const auto& p : parts) {
    if (!cur->is_dir) return std::unexpected(-ENOTDIR);
    auto it = cur->entries.find(p);
    if (it == cur->entries.end()) return std::unexpected(-ENOENT);
    cur = it->second;
  }
  if (!cur->is_dir) return std::unexpected(-ENOTDIR);
  return std::pair{cur, std::move(name)};
}

result<node_ptr> model::create(const char* path, mode_t mode, bool dir) {
  auto parent = parent_of(path);
  if (!parent) return std::unexpected(parent.error());
  auto& [p, name] = *parent;
  if (p->entries.contains(name)) return std::unexpected(-EEXIST);
  auto n = make_node(dir, mode);
  p->entries[name] = n;
  p->mtime = now();
  return n;
}

result<void> model::remove(const char* path, bool dir) {
  auto parent = parent_of(path);
  if (!parent) return std::unexpected(parent.error());
  auto& [p, name] = *parent;
  auto it = p->entries.find(name);
  if (it == p->entries.end()) return std::unexpected(-ENOENT);
  if (dir && !it->second->is_dir) return std::unexpected(-ENOTDIR);
  if (!dir && it->second->is_dir) return std::unexpected(-EISDIR);
  if (dir && !it->second->entries.empty()) return std::unexpected(-ENOTEMPTY);
  // The node lives on while an open handle or a durable entry names it.
  p->entries.erase(it);
  p->mtime = now();
  return {};
}

result<void> model::rename(const char* from, const char* to, unsigned flags) {
  if ((flags & ~unsigned{RENAME_NOREPLACE}) != 0) return std::unexpected(-EINVAL);  // RENAME_EXCHANGE, WHITEOUT
  auto src = parent_of(from);
  if (!src) return std::unexpected(src.error());
  auto dst = parent_of(to);
  if (!dst) return std::unexpected(dst.error());
  auto& [sp, sname] = *src;
  auto& [dp, dname] = *dst;
  auto it = sp->entries.find(sname);
  if (it == sp->entries.end()) return std::unexpected(-ENOENT);
  node_ptr moving = it->second;
  if (auto old = dp->entries.find(dname); old != dp->entries.end()) {
    if (old->second == moving) return {};
    if ((flags & RENAME_NOREPLACE) != 0) return std::unexpected(-EEXIST);
    if (old->second->is_dir != moving->is_dir) return std::unexpected(moving->is_dir ? -ENOTDIR : -EISDIR);
    if (old->second->is_dir && !old->second->entries.empty()) return std::unexpected(-ENOTEMPTY);
  }
  sp->entries.erase(sp->entries.find(sname));
  dp->entries[dname] = std::move(moving);
  sp->mtime = dp->mtime = now();
  return {};
}

void model::fsync(node& n) {
  if (n.is_dir) {
    n.durable_entries = n.entries;
  } else {
    n.file.sync();
  }
}

result<std::string> model::lose_power(const std::filesystem::path& to) {
  lost_ = true;
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
  if (auto r = write_durable(*root_, to, files, bytes); !r) return std::unexpected(r.error());
  return std::to_string(files) + " files " + std::to_string(bytes) + " bytes";
}

std::uint64_t model::bytes_used() const { return used(*root_); }

}  // namespace runnel::powerfs
