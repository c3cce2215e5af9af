#pragma once
// file_handle: an owned file descriptor, plus the few blocking metadata
// calls (open, truncate, rename, unlink, directory fsync) that the log makes
// at open, roll, truncate and delete time. Data-path I/O (write, read,
// fdatasync, fallocate) goes through io_ring, never through these.

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <span>
#include <system_error>

namespace runnel::storage {

class file_handle {
 public:
  file_handle() = default;
  explicit file_handle(int fd) : fd_(fd) {}
  ~file_handle();
  file_handle(const file_handle&) = delete;             // one owner closes the fd
  file_handle& operator=(const file_handle&) = delete;  // one owner closes the fd
  file_handle(file_handle&& o) noexcept : fd_(o.release()) {}
  file_handle& operator=(file_handle&& o) noexcept;

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] explicit operator bool() const { return fd_ >= 0; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Opens (O_CLOEXEC added). Errors are values.
  static std::expected<file_handle, std::error_code> open(const std::filesystem::path& p, int flags,
                                                          unsigned mode = 0644);

  [[nodiscard]] std::expected<std::uint64_t, std::error_code> size() const;
  [[nodiscard]] std::error_code truncate(std::uint64_t size) const;
  // Blocking pread of exactly buf.size() bytes (short file -> io_error).
  // Only for small files read whole at open (indexes, checkpoints).
  [[nodiscard]] std::error_code pread_exact(std::span<std::byte> buf, std::uint64_t pos) const;
  [[nodiscard]] std::error_code pwrite_all(std::span<const std::byte> buf, std::uint64_t pos) const;
  [[nodiscard]] std::error_code fsync() const;

 private:
  int fd_ = -1;
};

// fsync of a directory, so that creates, renames and unlinks in it survive a crash.
std::error_code fsync_dir(const std::filesystem::path& dir);

// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename,
// fsync of the directory.
std::error_code write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes);

// A file holding one offset (the recovery point, the cleaner checkpoint),
// 16 bytes, little endian: [u32 magic][i64 offset][u32 CRC-32C of bytes 0-11].
inline constexpr std::size_t offset_file_size = 16;
std::array<std::byte, offset_file_size> encode_offset_file(std::uint32_t magic, std::int64_t value);
// The offset in `path`; nullopt when the file is missing, short, of another
// magic, fails its CRC or holds a negative offset.
std::optional<std::int64_t> read_offset_file(const std::filesystem::path& path, std::uint32_t magic);

inline std::error_code last_error() { return {errno, std::system_category()}; }

}  // namespace runnel::storage
