// peer_client (broker/net/peer_client.h): the follower's connection to its
// leader, against an in-process listener that answers as told.

#include "broker/net/peer_client.h"

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <optional>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "schemas/frame.h"
#include "schemas/frame_reader.h"

using namespace runnel;
using runnel::net::peer_client;
using runnel::net::peer_response;

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
using call_result = std::expected<peer_response, std::error_code>;

// What the listener does with each request it reads.
enum class answer { echo, wrong_correlation, silence, hang_up };

// A listener on 127.0.0.1 that takes connections one after another and
// treats each request by `mode` (an echo answers with the request's
// correlation id and error NONE).
struct fake_peer {
  explicit fake_peer(asio::io_context& io) : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  ~fake_peer() {
    std::error_code ignored;
    acceptor.close(ignored);
    if (conn) conn->close(ignored);
  }
  fake_peer(const fake_peer&) = delete;
  fake_peer& operator=(const fake_peer&) = delete;
  [[nodiscard]] std::uint16_t port() const { return acceptor.local_endpoint().port(); }

  asio::awaitable<void> serve() {
    while (acceptor.is_open()) {
      auto [aec, sock] = co_await acceptor.async_accept(use_tuple);
      if (aec) co_return;
      ++connections;
      conn.emplace(std::move(sock));
      schemas::frame_reader reader(*conn, 16 * 1024);
      while (true) {
        auto head = co_await reader.read_head(1 << 20);
        if (!head) break;
        std::vector<std::byte> body(head->body_size());
        if (co_await reader.read_body(body)) break;
        auto req = schemas::verify_request(body, *head);
        if (!req) break;
        ++requests;
        if (mode == answer::silence) continue;
        if (mode == answer::hang_up) break;
        flatbuffers::FlatBufferBuilder fbb;
        const std::uint32_t id = (*req)->correlation_id() + (mode == answer::wrong_correlation ? 1 : 0);
        fbb.Finish(wire::CreateResponseEnvelope(fbb, id, wire::ErrorCode::NONE));
        auto frame = schemas::encode_frame_prefix(std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize())), 0);
        auto [wec, n] = co_await asio::async_write(*conn, asio::buffer(frame.data(), frame.size()), use_tuple);
        if (wec) break;
      }
      std::error_code ignored;
      conn->close(ignored);
    }
  }

  asio::ip::tcp::acceptor acceptor;
  std::optional<asio::ip::tcp::socket> conn;
  answer mode = answer::echo;
  int connections = 0;
  int requests = 0;
};

asio::awaitable<call_result> metadata_call(peer_client& c) {
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateMetadataRequest(fbb);
  co_return co_await c.call(fbb, wire::Request::MetadataRequest, body.Union());
}

// One call, the io_context run until it ends (the listener's coroutine
// never lets io.run() return), at most 20 s.
call_result call_on(asio::io_context& io, peer_client& c) {
  std::optional<call_result> out;
  asio::co_spawn(io, metadata_call(c), [&](std::exception_ptr, call_result r) { out = std::move(r); });
  const auto started = std::chrono::steady_clock::now();
  while (!out && std::chrono::steady_clock::now() - started < std::chrono::seconds(20)) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
  REQUIRE(out.has_value());
  return std::move(*out);
}

}  // namespace

TEST_CASE("peer client: answers come back matched, on one connection") {
  asio::io_context io;
  fake_peer peer(io);
  peer_client c(io.get_executor(), "127.0.0.1", peer.port(), "replica-1", std::chrono::seconds(5));
  for (int i = 0; i < 3; ++i) {
    auto r = call_on(io, c);
    REQUIRE(r.has_value());
    REQUIRE(r->envelope != nullptr);
    CHECK(r->envelope->error() == wire::ErrorCode::NONE);
  }
  CHECK(peer.requests == 3);
  CHECK(peer.connections == 1);
}

TEST_CASE("peer client: a refused connect, a hang-up and a mismatched answer fail the call, and the next call reconnects") {
  asio::io_context io;
  std::uint16_t closed_port = 0;
  {
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = a.local_endpoint().port();
  }
  peer_client nobody(io.get_executor(), "127.0.0.1", closed_port, "replica-1", std::chrono::seconds(5));
  auto refused = call_on(io, nobody);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error() == asio::error::connection_refused);

  fake_peer peer(io);
  peer_client c(io.get_executor(), "127.0.0.1", peer.port(), "replica-1", std::chrono::seconds(5));
  peer.mode = answer::hang_up;
  CHECK_FALSE(call_on(io, c).has_value());
  peer.mode = answer::wrong_correlation;
  auto mismatched = call_on(io, c);
  REQUIRE_FALSE(mismatched.has_value());
  CHECK(mismatched.error() == schemas::frame_errc::bad_envelope);
  peer.mode = answer::echo;
  CHECK(call_on(io, c).has_value());
  CHECK(peer.connections == 3);  // one per failure, then the good one
}

TEST_CASE("peer client: no answer within the timeout fails with timed_out and drops the connection") {
  asio::io_context io;
  fake_peer peer(io);
  peer.mode = answer::silence;
  peer_client c(io.get_executor(), "127.0.0.1", peer.port(), "replica-1", std::chrono::milliseconds(200));
  const auto started = std::chrono::steady_clock::now();
  auto r = call_on(io, c);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == std::errc::timed_out);
  CHECK(took >= std::chrono::milliseconds(200));
  CHECK(took < std::chrono::seconds(5));
  peer.mode = answer::echo;
  CHECK(call_on(io, c).has_value());
  CHECK(peer.connections == 2);
}

TEST_CASE("peer client: close() ends a call in progress, later calls fail at once, and a second call at a time is refused") {
  asio::io_context io;
  fake_peer peer(io);
  peer.mode = answer::silence;
  peer_client c(io.get_executor(), "127.0.0.1", peer.port(), "replica-1", std::chrono::seconds(30));
  std::optional<call_result> first;
  std::optional<call_result> second;
  asio::co_spawn(io, metadata_call(c), [&](std::exception_ptr, call_result r) { first = std::move(r); });
  asio::co_spawn(io, metadata_call(c), [&](std::exception_ptr, call_result r) { second = std::move(r); });
  asio::steady_timer t(io);
  t.expires_after(std::chrono::milliseconds(100));
  t.async_wait([&](std::error_code) { c.close(); });
  const auto started = std::chrono::steady_clock::now();
  while ((!first || !second) && std::chrono::steady_clock::now() - started < std::chrono::seconds(10)) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  REQUIRE_FALSE(second->has_value());
  CHECK(second->error() == std::errc::operation_in_progress);
  REQUIRE_FALSE(first->has_value());
  CHECK(first->error() == asio::error::operation_aborted);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));  // not the 30 s timeout
  auto later = call_on(io, c);
  REQUIRE_FALSE(later.has_value());
  CHECK(later.error() == asio::error::operation_aborted);
}
