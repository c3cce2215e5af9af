#pragma once
// frame_reader: frames (frame.h) off a stream socket through one buffer.
// A receive takes whatever the kernel holds, up to the buffer, so a small
// frame costs one recv(2) instead of two (head, then body) and pipelined
// frames share one; a body larger than a quarter of the buffer is read
// straight into its destination after the part already buffered, and
// after such a frame the next head is read alone (8 bytes), so streams of
// large frames are not copied through the buffer.
//
// Header-only, for the broker's connections and the client's (both have
// Asio); one coroutine reads at a time.

#include <algorithm>
#include <array>
#include <cstring>
#include <expected>
#include <span>
#include <system_error>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>

#include "schemas/frame.h"

namespace runnel::schemas {

template <class Stream>
class frame_reader {
 public:
  explicit frame_reader(Stream& s, std::size_t buffer_bytes = 64 * 1024) : stream_(s), buf_(buffer_bytes) {}

  // The next frame's head, checked against `max_frame_bytes`; then the
  // caller reads its body with read_body before the next head. An error:
  // the peer left, the socket failed, or the head is malformed.
  asio::awaitable<std::expected<frame_head, std::error_code>> read_head(std::size_t max_frame_bytes) {
    std::array<std::byte, frame_head_size> head{};
    if (begin_ == end_ && last_large_) {
      // A stream of large frames (fetch answers, produce requests): the
      // head alone, so the body lands in place without a copy.
      auto [ec, n] = co_await asio::async_read(stream_, asio::buffer(head), use_tuple);
      if (ec) co_return std::unexpected(ec);
    } else {
      if (auto ec = co_await fill(frame_head_size)) co_return std::unexpected(ec);
      std::memcpy(head.data(), buf_.data() + begin_, frame_head_size);
      begin_ += frame_head_size;
      if (begin_ == end_) begin_ = end_ = 0;
    }
    co_return decode_frame_head(head, max_frame_bytes);
  }

  // The body of the frame whose head came last, into `out` (its
  // body_size() bytes).
  asio::awaitable<std::error_code> read_body(std::span<std::byte> out) {
    last_large_ = out.size() > buf_.size() / 4;
    std::size_t done = take(out);
    if (done == out.size()) co_return std::error_code{};
    const std::size_t left = out.size() - done;
    if (left > buf_.size() / 4) {
      auto [ec, n] = co_await asio::async_read(stream_, asio::buffer(out.data() + done, left), use_tuple);
      co_return ec;
    }
    if (auto ec = co_await fill(left)) co_return ec;
    take(out.subspan(done));
    co_return std::error_code{};
  }

 private:
  static constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

  // Copies buffered bytes into `out`; returns how many.
  std::size_t take(std::span<std::byte> out) {
    const std::size_t n = std::min(out.size(), end_ - begin_);
    std::memcpy(out.data(), buf_.data() + begin_, n);
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
    return n;
  }

  // Receives until at least `want` (<= the buffer) bytes are buffered.
  asio::awaitable<std::error_code> fill(std::size_t want) {
    if (end_ - begin_ >= want) co_return std::error_code{};
    if (buf_.size() - begin_ < want) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    while (end_ - begin_ < want) {
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buf_.data() + end_, buf_.size() - end_), use_tuple);
      if (ec) co_return ec;
      end_ += n;
    }
    co_return std::error_code{};
  }

  Stream& stream_;
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0;  // first unread byte
  std::size_t end_ = 0;    // one past the last received byte
  bool last_large_ = false;  // the last body was over a quarter of the buffer
};

}  // namespace runnel::schemas
