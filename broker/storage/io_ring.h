#pragma once
// io_ring: one io_uring instance (liburing) driven by an Asio io_context.
//
// One ring per shard. Every call, and every completion, happens on the
// thread that runs the io_context: the ring is not thread-safe. Operations
// are awaitable; submissions made during one turn of the event loop go to
// the kernel in one io_uring_submit. The ring's eventfd is registered with
// the io_context, so completions are reaped without a thread of their own and
// the shard thread never blocks on disk.
//
// Buffers and iovec arrays passed in must stay valid until the operation
// completes (the awaiting coroutine keeps them alive). Results are values:
// a byte count or a std::error_code in the system category (-cqe->res).

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <span>
#include <system_error>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>

namespace runnel::storage {

class io_ring {
 public:
  // `entries` is the submission queue size; operations beyond it wait in
  // user space until completions free slots (never an error).
  explicit io_ring(asio::io_context& io, unsigned entries = 256);
  ~io_ring();
  // Completions point back at the ring and the eventfd is registered with
  // the io_context: the ring stays where it was made.
  io_ring(const io_ring&) = delete;
  io_ring& operator=(const io_ring&) = delete;
  io_ring(io_ring&&) = delete;
  io_ring& operator=(io_ring&&) = delete;

  using io_result = std::expected<std::size_t, std::error_code>;

  // pwrite/pwritev/pread at file position `pos`. A short count is returned
  // as is (the caller decides whether to continue).
  asio::awaitable<io_result> write(int fd, std::span<const std::byte> buf, std::uint64_t pos);
  asio::awaitable<io_result> writev(int fd, std::span<const iovec> iov, std::uint64_t pos);
  asio::awaitable<io_result> read(int fd, std::span<std::byte> buf, std::uint64_t pos);
  // fdatasync(2) (IORING_FSYNC_DATASYNC) and fsync(2).
  asio::awaitable<std::error_code> fdatasync(int fd);
  asio::awaitable<std::error_code> fsync(int fd);
  // rename(2) (IORING_OP_RENAMEAT); both paths must outlive the call.
  asio::awaitable<std::error_code> rename(const char* from, const char* to);
  // fallocate(2), e.g. FALLOC_FL_KEEP_SIZE to reserve blocks ahead of the tail.
  asio::awaitable<std::error_code> fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t len);

  // Writes all of `buf` (continuing after short writes) and reads exactly
  // `buf.size()` bytes or fails (a read past end of file is errc::io_error
  // from std::errc, i.e. std::make_error_code(std::errc::io_error)).
  asio::awaitable<std::error_code> write_all(int fd, std::span<const std::byte> buf, std::uint64_t pos);
  asio::awaitable<std::error_code> read_exact(int fd, std::span<std::byte> buf, std::uint64_t pos);

  // write_file_atomic (file.h) with its fdatasync, rename and directory
  // fsync on the ring: `bytes` to <path>.tmp, synced, renamed over `path`,
  // the directory synced. The thread only opens the files.
  asio::awaitable<std::error_code> replace_file(std::filesystem::path path, std::span<const std::byte> bytes);

  // Operations submitted and not yet completed (for tests and shutdown).
  [[nodiscard]] std::size_t in_flight() const noexcept;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel::storage
