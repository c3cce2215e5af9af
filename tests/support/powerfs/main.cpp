// runnel-powerfs: a FUSE filesystem that forgets, at a power loss, whatever
// was not fsynced (model.h has the rules), in the spirit of Jepsen's LazyFS.
//
//   runnel-powerfs [--seed DIR] --control SOCKET MOUNTPOINT
//
// Serves an in-memory tree at MOUNTPOINT (seeded from DIR, all of it
// durable). SOCKET is a unix stream socket, created once the kernel has
// initialised the mount; each connection sends one line and reads one line:
//   "ping"             -> "ok"
//   "lose-power PATH"  -> writes the durable state to PATH (a new directory),
//                         answers "ok <n> files <m> bytes", and from then on
//                         fails every filesystem call with EIO
// SIGTERM unmounts and exits. The kernel does no write-back caching (writes
// reach the model as they happen) and passes fsync, fdatasync and directory
// fsync through; one thread serves the mount and a mutex keeps the control
// thread out while it does.
#define FUSE_USE_VERSION 31
#include "tests/support/powerfs/model.h"

#include <fuse.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using runnel::powerfs::model;
using runnel::powerfs::node;
using runnel::powerfs::node_ptr;

struct state {
  model fs;
  std::mutex mu;
  std::string control_path;
};
state* g = nullptr;  // FUSE's C callbacks reach the state through this

constexpr std::uint64_t capacity_bytes = 64ULL << 30;  // what statfs reports

// Every callback takes the lock and fails once the power is lost.
#define POWERFS_ENTER()                     \
  std::lock_guard lock(g->mu);              \
  if (g->fs.lost()) return -EIO

node_ptr& handle(fuse_file_info* fi) { return *reinterpret_cast<node_ptr*>(fi->fh); }

// The node an open handle names (it may be unlinked), else the one at path.
runnel::powerfs::result<node_ptr> resolve(const char* path, fuse_file_info* fi) {
  if (fi != nullptr && fi->fh != 0) return handle(fi);
  if (path == nullptr) return std::unexpected(-EBADF);
  return g->fs.lookup(path);
}

void attach(fuse_file_info* fi, node_ptr n) { fi->fh = reinterpret_cast<std::uint64_t>(new node_ptr(std::move(n))); }

void detach(fuse_file_info* fi) {
  delete reinterpret_cast<node_ptr*>(fi->fh);
  fi->fh = 0;
}

int do_getattr(const char* path, struct stat* st, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  *st = {};
  st->st_mode = (*n)->mode;
  st->st_nlink = (*n)->is_dir ? 2 : 1;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_size = static_cast<off_t>((*n)->file.bytes.size());
  st->st_blksize = 4096;
  st->st_blocks = (st->st_size + 511) / 512;
  st->st_atim = st->st_mtim = st->st_ctim = (*n)->mtime;
  return 0;
}

int do_mkdir(const char* path, mode_t mode) {
  POWERFS_ENTER();
  auto n = g->fs.create(path, mode, true);
  return n ? 0 : n.error();
}

int do_unlink(const char* path) {
  POWERFS_ENTER();
  auto r = g->fs.remove(path, false);
  return r ? 0 : r.error();
}

int do_rmdir(const char* path) {
  POWERFS_ENTER();
  auto r = g->fs.remove(path, true);
  return r ? 0 : r.error();
}

int do_rename(const char* from, const char* to, unsigned flags) {
  POWERFS_ENTER();
  auto r = g->fs.rename(from, to, flags);
  return r ? 0 : r.error();
}

int do_chmod(const char* path, mode_t mode, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  (*n)->mode = ((*n)->mode & S_IFMT) | (mode & 07777);
  return 0;
}

int do_truncate(const char* path, off_t size, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  if ((*n)->is_dir) return -EISDIR;
  (*n)->file.resize(static_cast<std::uint64_t>(size));
  return 0;
}

int do_open(const char* path, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = g->fs.lookup(path);
  if (!n) return n.error();
  if ((*n)->is_dir) return -EISDIR;
  if ((fi->flags & O_TRUNC) != 0) (*n)->file.resize(0);
  attach(fi, *n);
  return 0;
}

int do_create(const char* path, mode_t mode, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = g->fs.create(path, mode, false);
  if (!n) return n.error();
  attach(fi, *n);
  return 0;
}

int do_read(const char* path, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  const auto& bytes = (*n)->file.bytes;
  if (static_cast<std::uint64_t>(off) >= bytes.size()) return 0;
  const auto len = std::min<std::uint64_t>(size, bytes.size() - static_cast<std::uint64_t>(off));
  std::memcpy(buf, bytes.data() + off, len);
  return static_cast<int>(len);
}

int do_write(const char* path, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  (*n)->file.write(static_cast<std::uint64_t>(off), {buf, size});
  return static_cast<int>(size);
}

int do_statfs(const char*, struct statvfs* st) {
  POWERFS_ENTER();
  *st = {};
  st->f_bsize = st->f_frsize = 4096;
  st->f_blocks = capacity_bytes / 4096;
  const auto used = std::min(capacity_bytes, g->fs.bytes_used());
  st->f_bfree = st->f_bavail = (capacity_bytes - used) / 4096;
  st->f_files = st->f_ffree = st->f_favail = 1 << 20;
  st->f_namemax = 255;
  return 0;
}

int do_flush(const char*, fuse_file_info*) {
  POWERFS_ENTER();
  return 0;  // close(2) promises nothing about durability
}

int do_release(const char*, fuse_file_info* fi) {
  std::lock_guard lock(g->mu);
  detach(fi);
  return 0;
}

int do_fsync(const char* path, int /*datasync*/, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  model::fsync(**n);  // fdatasync too: the size is data here, and mtime is not modelled
  return 0;
}

int do_opendir(const char* path, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = g->fs.lookup(path);
  if (!n) return n.error();
  if (!(*n)->is_dir) return -ENOTDIR;
  attach(fi, *n);
  return 0;
}

int do_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info* fi, fuse_readdir_flags) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  fill(buf, ".", nullptr, 0, fuse_fill_dir_flags{});
  fill(buf, "..", nullptr, 0, fuse_fill_dir_flags{});
  for (const auto& [name, child] : (*n)->entries) fill(buf, name.c_str(), nullptr, 0, fuse_fill_dir_flags{});
  return 0;
}

int do_releasedir(const char*, fuse_file_info* fi) {
  std::lock_guard lock(g->mu);
  detach(fi);
  return 0;
}

int do_fsyncdir(const char* path, int, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  model::fsync(**n);
  return 0;
}

int do_utimens(const char* path, const timespec tv[2], fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  if (tv[1].tv_nsec != UTIME_OMIT) ::clock_gettime(CLOCK_REALTIME, &(*n)->mtime);
  if (tv[1].tv_nsec != UTIME_OMIT && tv[1].tv_nsec != UTIME_NOW) (*n)->mtime = tv[1];
  return 0;
}

// Mode 0 extends the size with zeros; FALLOC_FL_KEEP_SIZE reserves blocks,
// which memory does not need. Punching holes is not modelled.
int do_fallocate(const char* path, int mode, off_t off, off_t len, fuse_file_info* fi) {
  POWERFS_ENTER();
  auto n = resolve(path, fi);
  if (!n) return n.error();
  if (mode == FALLOC_FL_KEEP_SIZE) return 0;
  if (mode != 0) return -EOPNOTSUPP;
  const auto end = static_cast<std::uint64_t>(off + len);
  if (end > (*n)->file.bytes.size()) (*n)->file.resize(end);
  return 0;
}

// One command per connection; see the header comment.
std::string run_command(const std::string& line) {
  if (line == "ping") return "ok";
  constexpr std::string_view lose = "lose-power ";
  if (line.starts_with(lose)) {
    std::lock_guard lock(g->mu);
    if (g->fs.lost()) return "error power already lost";
    auto r = g->fs.lose_power(line.substr(lose.size()));
    return r ? "ok " + *r : "error " + std::string(std::strerror(-r.error()));
  }
  return "error unknown command";
}

void serve_control(int listener) {
  for (;;) {
    const int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string line;
    char ch = 0;
    while (::read(c, &ch, 1) == 1 && ch != '\n') line.push_back(ch);
    const auto reply = run_command(line) + "\n";
    (void)!::write(c, reply.data(), reply.size());
    ::close(c);
  }
}

// Bound only now: a client that can connect knows the mount is live.
void* do_init(fuse_conn_info* conn, fuse_config* cfg) {
  cfg->hard_remove = 1;  // an unlinked open file is not renamed to .fuse_hidden*
  cfg->nullpath_ok = 1;
  cfg->kernel_cache = 0;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  conn->max_write = 1 << 20;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", g->control_path.c_str());
  ::unlink(addr.sun_path);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    std::fprintf(stderr, "runnel-powerfs: control socket %s: %s\n", g->control_path.c_str(), std::strerror(errno));
    std::exit(1);
  }
  std::thread(serve_control, fd).detach();
  return nullptr;
}

fuse_operations operations() {
  fuse_operations ops{};
  ops.getattr = do_getattr;
  ops.mkdir = do_mkdir;
  ops.unlink = do_unlink;
  ops.rmdir = do_rmdir;
  ops.rename = do_rename;
  ops.chmod = do_chmod;
  ops.truncate = do_truncate;
  ops.open = do_open;
  ops.read = do_read;
  ops.write = do_write;
  ops.statfs = do_statfs;
  ops.flush = do_flush;
  ops.release = do_release;
  ops.fsync = do_fsync;
  ops.opendir = do_opendir;
  ops.readdir = do_readdir;
  ops.releasedir = do_releasedir;
  ops.fsyncdir = do_fsyncdir;
  ops.init = do_init;
  ops.create = do_create;
  ops.utimens = do_utimens;
  ops.fallocate = do_fallocate;
  return ops;
}

int usage() {
  std::fprintf(stderr, "usage: runnel-powerfs [--seed DIR] --control SOCKET MOUNTPOINT\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  state s;
  g = &s;
  std::string seed;
  std::string mountpoint;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) {
      seed = argv[++i];
    } else if (a == "--control" && i + 1 < argc) {
      s.control_path = argv[++i];
    } else if (mountpoint.empty() && !a.starts_with("-")) {
      mountpoint = a;
    } else {
      return usage();
    }
  }
  if (s.control_path.empty() || mountpoint.empty()) return usage();
  if (!seed.empty()) {
    if (auto r = s.fs.seed(seed); !r) {
      std::fprintf(stderr, "runnel-powerfs: seeding from %s: %s\n", seed.c_str(), std::strerror(-r.error()));
      return 1;
    }
  }
  std::vector<std::string> args{argv[0], mountpoint, "-f", "-s", "-o", "fsname=powerfs,subtype=powerfs"};
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  const auto ops = operations();
  return fuse_main(static_cast<int>(cargs.size()), cargs.data(), &ops, nullptr);
}
