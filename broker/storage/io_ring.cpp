#include "broker/storage/io_ring.h"

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include <asio/async_result.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "broker/storage/file.h"
#include "broker/storage/logger.h"
#include "schemas/assert.h"

namespace runnel::storage {

namespace {

std::error_code sys_error(int negative_errno) { return {-negative_errno, std::system_category()}; }

}  // namespace

// One operation from start to completion. `prep` fills the SQE (deferred
// while the ring is full); `done` gets cqe->res.
struct io_op {
  std::move_only_function<void(io_uring_sqe*)> prep;
  std::move_only_function<void(int)> done;
};

struct io_ring::impl {
  impl(asio::io_context& io, unsigned entries) : events(io) {
    if (int rc = io_uring_queue_init(entries, &ring, 0); rc < 0) {
      throw std::system_error(sys_error(rc), "io_uring_queue_init");
    }
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
      io_uring_queue_exit(&ring);
      throw std::system_error(errno, std::system_category(), "eventfd");
    }
    if (int rc = io_uring_register_eventfd(&ring, efd); rc < 0) {
      ::close(efd);
      io_uring_queue_exit(&ring);
      throw std::system_error(sys_error(rc), "io_uring_register_eventfd");
    }
    events.assign(efd);
    // The kernel buffers completions beyond the CQ (IORING_FEAT_NODROP), but
    // keeping what is in the kernel within the CQ avoids that slow path.
    kernel_limit = ring.cq.ring_entries;
  }

  ~impl() {
    RUNNEL_ASSERT(in_kernel == 0 && waiting.empty(), "io_ring destroyed with {} operations in flight",
                  in_kernel + waiting.size());
    std::error_code ignored;
    events.close(ignored);  // closes the eventfd
    io_uring_queue_exit(&ring);
  }

  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  void start(io_op* op) {
    if (in_kernel >= kernel_limit || !waiting.empty()) {
      waiting.push_back(op);
      return;
    }
    place(op);
  }

  // Puts `op` in an SQE (there is room: in_kernel < kernel_limit <= 2 * SQ).
  void place(io_op* op) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) {  // SQ full of unsubmitted entries: flush them now
      submit_now();
      sqe = io_uring_get_sqe(&ring);
      RUNNEL_ASSERT(sqe != nullptr, "io_uring SQ full right after submit");
    }
    op->prep(sqe);
    io_uring_sqe_set_data(sqe, op);
    ++in_kernel;
    ++unsubmitted;
    if (!submit_posted) {
      submit_posted = true;
      // Every operation started during this turn of the event loop goes to
      // the kernel in one io_uring_submit.
      asio::post(events.get_executor(), [this] {
        submit_posted = false;
        submit_now();
      });
    }
  }

  void submit_now() {
    if (unsubmitted == 0) return;
    int rc = 0;
    do {
      rc = io_uring_submit(&ring);
    } while (rc == -EINTR);
    if (rc < 0) {
      // Only -EBUSY/-EAGAIN (completion backlog, resource pressure) are
      // plausible here; the entries stay queued and a posted retry submits
      // them after the event loop has reaped completions.
      logger().warn("io_uring_submit: {}; retrying", sys_error(rc).message());
      if (!submit_posted) {
        submit_posted = true;
        asio::post(events.get_executor(), [this] {
          submit_posted = false;
          submit_now();
        });
      }
    } else {
      unsubmitted -= static_cast<unsigned>(rc) <= unsubmitted ? static_cast<unsigned>(rc) : unsubmitted;
    }
    arm();
  }

  // Waits on the eventfd only while operations are in the kernel, so an idle
  // ring does not keep io_context::run() from returning.
  void arm() {
    if (armed || in_kernel == 0) return;
    armed = true;
    events.async_wait(asio::posix::stream_descriptor::wait_read, [this](std::error_code ec) {
      armed = false;
      if (ec == asio::error::operation_aborted) return;
      std::uint64_t counter = 0;
      [[maybe_unused]] auto n = ::read(events.native_handle(), &counter, sizeof counter);
      reap();
    });
  }

  void reap() {
    std::vector<std::pair<io_op*, int>> done;
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(&ring, &cqe) == 0 && cqe != nullptr) {
      done.emplace_back(static_cast<io_op*>(io_uring_cqe_get_data(cqe)), cqe->res);
      io_uring_cqe_seen(&ring, cqe);
    }
    in_kernel -= done.size();
    while (!waiting.empty() && in_kernel < kernel_limit) {
      io_op* op = waiting.front();
      waiting.pop_front();
      place(op);
    }
    // State is consistent before any handler runs: a resumed coroutine may
    // start new operations.
    for (auto [op, res] : done) {
      auto fn = std::move(op->done);
      delete op;
      fn(res);
    }
    if (unsubmitted > 0 && !submit_posted) submit_now();
    arm();
  }

  io_uring ring{};
  asio::posix::stream_descriptor events;
  std::deque<io_op*> waiting;
  std::size_t in_kernel = 0;
  std::size_t kernel_limit = 0;
  unsigned unsubmitted = 0;
  bool armed = false;
  bool submit_posted = false;
};

io_ring::io_ring(asio::io_context& io, unsigned entries) : impl_(std::make_unique<impl>(io, entries)) {}
io_ring::~io_ring() = default;

std::size_t io_ring::in_flight() const noexcept { return impl_->in_kernel + impl_->waiting.size(); }

namespace {

// Runs one operation and returns cqe->res.
asio::awaitable<int> run_op(io_ring::impl& ring, std::move_only_function<void(io_uring_sqe*)> prep) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(int)>(
      [&ring, &prep](auto handler) {
        ring.start(new io_op{std::move(prep), [h = std::move(handler)](int res) mutable { std::move(h)(res); }});
      },
      asio::use_awaitable);
}

io_ring::io_result to_result(int res) {
  if (res < 0) return std::unexpected(sys_error(res));
  return static_cast<std::size_t>(res);
}

std::error_code to_error(int res) { return res < 0 ? sys_error(res) : std::error_code{}; }

}  // namespace

asio::awaitable<io_ring::io_result> io_ring::write(int fd, std::span<const std::byte> buf, std::uint64_t pos) {
  co_return to_result(co_await run_op(*impl_, [=](io_uring_sqe* sqe) {
    io_uring_prep_write(sqe, fd, buf.data(), static_cast<unsigned>(buf.size()), pos);
  }));
}

asio::awaitable<io_ring::io_result> io_ring::writev(int fd, std::span<const iovec> iov, std::uint64_t pos) {
  co_return to_result(co_await run_op(*impl_, [=](io_uring_sqe* sqe) {
    io_uring_prep_writev(sqe, fd, iov.data(), static_cast<unsigned>(iov.size()), pos);
  }));
}

asio::awaitable<io_ring::io_result> io_ring::read(int fd, std::span<std::byte> buf, std::uint64_t pos) {
  co_return to_result(co_await run_op(*impl_, [=](io_uring_sqe* sqe) {
    io_uring_prep_read(sqe, fd, buf.data(), static_cast<unsigned>(buf.size()), pos);
  }));
}

asio::awaitable<std::error_code> io_ring::fdatasync(int fd) {
  co_return to_error(co_await run_op(*impl_, [=](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); }));
}

asio::awaitable<std::error_code> io_ring::fsync(int fd) {
  co_return to_error(co_await run_op(*impl_, [=](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, 0); }));
}

asio::awaitable<std::error_code> io_ring::rename(const char* from, const char* to) {
  co_return to_error(co_await run_op(*impl_, [=](io_uring_sqe* sqe) { io_uring_prep_rename(sqe, from, to); }));
}

asio::awaitable<std::error_code> io_ring::fallocate(int fd, int mode, std::uint64_t offset, std::uint64_t len) {
  co_return to_error(co_await run_op(*impl_, [=](io_uring_sqe* sqe) {
    io_uring_prep_fallocate(sqe, fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len));
  }));
}

asio::awaitable<std::error_code> io_ring::replace_file(std::filesystem::path path, std::span<const std::byte> bytes) {
  auto tmp = path;
  tmp += ".tmp";
  {
    auto fd = file_handle::open(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (!fd) co_return fd.error();
    if (auto ec = co_await write_all(fd->get(), bytes, 0)) co_return ec;
    if (auto ec = co_await fdatasync(fd->get())) co_return ec;
  }
  if (auto ec = co_await rename(tmp.c_str(), path.c_str())) co_return ec;
  auto dirfd = file_handle::open(path.parent_path(), O_RDONLY | O_DIRECTORY);
  if (!dirfd) co_return dirfd.error();
  co_return co_await fsync(dirfd->get());
}

asio::awaitable<std::error_code> io_ring::write_all(int fd, std::span<const std::byte> buf, std::uint64_t pos) {
  while (!buf.empty()) {
    auto n = co_await write(fd, buf, pos);
    if (!n) co_return n.error();
    if (*n == 0) co_return std::make_error_code(std::errc::io_error);
    buf = buf.subspan(*n);
    pos += *n;
  }
  co_return std::error_code{};
}

asio::awaitable<std::error_code> io_ring::read_exact(int fd, std::span<std::byte> buf, std::uint64_t pos) {
  while (!buf.empty()) {
    auto n = co_await read(fd, buf, pos);
    if (!n) co_return n.error();
    if (*n == 0) co_return std::make_error_code(std::errc::io_error);  // end of file
    buf = buf.subspan(*n);
    pos += *n;
  }
  co_return std::error_code{};
}

}  // namespace runnel::storage
