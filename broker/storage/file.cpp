#include "broker/storage/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

namespace runnel::storage {

file_handle::~file_handle() {
  if (fd_ >= 0) ::close(fd_);
}

file_handle& file_handle::operator=(file_handle&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

std::expected<file_handle, std::error_code> file_handle::open(const std::filesystem::path& p, int flags,
                                                              unsigned mode) {
  int fd = ::open(p.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return std::unexpected(last_error());
  return file_handle(fd);
}

std::expected<std::uint64_t, std::error_code> file_handle::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return std::unexpected(last_error());
  return static_cast<std::uint64_t>(st.st_size);
}

std::error_code file_handle::truncate(std::uint64_t size) const {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return last_error();
  return {};
}

std::error_code file_handle::pread_exact(std::span<std::byte> buf, std::uint64_t pos) const {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd_, buf.data() + done, buf.size() - done, static_cast<off_t>(pos + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (n == 0) return std::make_error_code(std::errc::io_error);
    done += static_cast<std::size_t>(n);
  }
  return {};
}

std::error_code file_handle::pwrite_all(std::span<const std::byte> buf, std::uint64_t pos) const {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pwrite(fd_, buf.data() + done, buf.size() - done, static_cast<off_t>(pos + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

std::error_code file_handle::fsync() const {
  if (::fsync(fd_) != 0) return last_error();
  return {};
}

std::error_code fsync_dir(const std::filesystem::path& dir) {
  auto fd = file_handle::open(dir, O_RDONLY | O_DIRECTORY);
  if (!fd) return fd.error();
  return fd->fsync();
}

std::error_code write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  auto tmp = path;
  tmp += ".tmp";
  {
    auto fd = file_handle::open(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (!fd) return fd.error();
    if (auto ec = fd->pwrite_all(bytes, 0)) return ec;
    if (auto ec = fd->fsync()) return ec;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return last_error();
  return fsync_dir(path.parent_path());
}

}  // namespace runnel::storage
