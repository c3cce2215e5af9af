#include "broker/storage/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "schemas/crc32c.h"

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

std::array<std::byte, offset_file_size> encode_offset_file(std::uint32_t magic, std::int64_t value) {
  std::array<std::byte, offset_file_size> buf{};
  std::memcpy(buf.data(), &magic, 4);
  std::memcpy(buf.data() + 4, &value, 8);
  const std::uint32_t crc = crc32c::value(std::span(buf).first(12));
  std::memcpy(buf.data() + 12, &crc, 4);
  return buf;
}

std::optional<std::int64_t> read_offset_file(const std::filesystem::path& path, std::uint32_t magic) {
  auto fd = file_handle::open(path, O_RDONLY);
  if (!fd) return std::nullopt;
  std::array<std::byte, offset_file_size> buf{};
  if (fd->pread_exact(buf, 0)) return std::nullopt;
  std::uint32_t stored_magic = 0;
  std::int64_t value = 0;
  std::uint32_t crc = 0;
  std::memcpy(&stored_magic, buf.data(), 4);
  std::memcpy(&value, buf.data() + 4, 8);
  std::memcpy(&crc, buf.data() + 12, 4);
  if (stored_magic != magic || crc != crc32c::value(std::span(buf).first(12)) || value < 0) return std::nullopt;
  return value;
}

}  // namespace runnel::storage
