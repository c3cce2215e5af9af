// frame_reader over a real socket pair: frames that share a receive, frames
// cut into pieces, bodies larger than the buffer, and what ends a stream.

#include "schemas/frame_reader.h"

#include <doctest/doctest.h>

#include <cstring>
#include <optional>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/write.hpp>

using namespace runnel::schemas;

namespace {

using socket_type = asio::local::stream_protocol::socket;

// A frame with `body_bytes` (>= 8) after the head, an 8-byte envelope
// first; body byte i is (seed + i) % 251.
std::vector<std::byte> frame(std::size_t body_bytes, std::uint8_t seed) {
  std::vector<std::byte> f(frame_head_size + body_bytes);
  const auto length = static_cast<std::uint32_t>(body_bytes + 4);
  const std::uint32_t envelope = 8;
  std::memcpy(f.data(), &length, 4);
  std::memcpy(f.data() + 4, &envelope, 4);
  for (std::size_t i = 0; i < body_bytes; ++i) f[frame_head_size + i] = std::byte((seed + i) % 251);
  return f;
}

bool body_matches(const std::vector<std::byte>& body, std::uint8_t seed) {
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != std::byte((seed + i) % 251)) return false;
  }
  return true;
}

struct outcome {
  std::vector<std::vector<std::byte>> bodies;
  std::error_code error;  // what ended the reading
};

// Writes `chunks` one write each (the writer closes after), reads frames
// through a reader of `buffer` bytes until an error.
outcome run(const std::vector<std::vector<std::byte>>& chunks, std::size_t buffer, std::size_t max_frame = 1 << 20) {
  asio::io_context io;
  socket_type a(io);
  socket_type b(io);
  asio::local::connect_pair(a, b);
  outcome out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (const auto& c : chunks) co_await asio::async_write(a, asio::buffer(c), asio::use_awaitable);
        a.close();
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        frame_reader<socket_type> reader(b, buffer);
        while (true) {
          auto head = co_await reader.read_head(max_frame);
          if (!head) {
            out.error = head.error();
            co_return;
          }
          std::vector<std::byte> body(head->body_size());
          if (auto ec = co_await reader.read_body(body)) {
            out.error = ec;
            co_return;
          }
          out.bodies.push_back(std::move(body));
        }
      },
      asio::detached);
  io.run();
  return out;
}

std::vector<std::byte> join(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

}  // namespace

TEST_CASE("frame_reader: several frames in one write come out whole and in order") {
  auto r = run({join({frame(10, 1), frame(8, 2), frame(300, 3)})}, 1024);
  REQUIRE(r.bodies.size() == 3);
  CHECK(r.bodies[0].size() == 10);
  CHECK(body_matches(r.bodies[0], 1));
  CHECK(r.bodies[1].size() == 8);
  CHECK(r.bodies[2].size() == 300);
  CHECK(body_matches(r.bodies[2], 3));
  CHECK(r.error == asio::error::eof);
}

TEST_CASE("frame_reader: a frame cut into single bytes, and heads cut across writes") {
  auto bytes = join({frame(40, 7), frame(9, 9)});
  std::vector<std::vector<std::byte>> chunks;
  for (auto b : bytes) chunks.push_back({b});
  auto r = run(chunks, 64);
  REQUIRE(r.bodies.size() == 2);
  CHECK(body_matches(r.bodies[0], 7));
  CHECK(body_matches(r.bodies[1], 9));
}

TEST_CASE("frame_reader: bodies larger than the buffer, after and between small frames") {
  auto big = frame(100'000, 5);
  auto r = run({join({frame(11, 4), big}), frame(20, 6), join({frame(900, 8), frame(8, 1)})}, 1024);
  REQUIRE(r.bodies.size() == 5);
  CHECK(body_matches(r.bodies[0], 4));
  CHECK(r.bodies[1].size() == 100'000);
  CHECK(body_matches(r.bodies[1], 5));
  CHECK(body_matches(r.bodies[2], 6));
  CHECK(r.bodies[3].size() == 900);
  CHECK(body_matches(r.bodies[3], 8));
  CHECK_FALSE(body_matches(r.bodies[3], 9));  // the checker's negative control
  CHECK(body_matches(r.bodies[4], 1));
}

TEST_CASE("frame_reader: a head over the limit fails before reading its body") {
  auto r = run({join({frame(10, 1), frame(5000, 2)})}, 1024, 1000);
  REQUIRE(r.bodies.size() == 1);
  CHECK(r.error == make_error_code(frame_errc::frame_too_large));
}

TEST_CASE("frame_reader: the peer leaving mid-body or mid-head is an error, not a frame") {
  auto whole = frame(50, 1);
  auto r = run({std::vector<std::byte>(whole.begin(), whole.begin() + 30)}, 1024);
  CHECK(r.bodies.empty());
  CHECK(r.error == asio::error::eof);
  auto r2 = run({join({frame(12, 2), std::vector<std::byte>(whole.begin(), whole.begin() + 5)})}, 1024);
  CHECK(r2.bodies.size() == 1);
  CHECK(r2.error == asio::error::eof);
}
