#pragma once
// peer_client: this broker's connection to another broker (a follower's
// replica fetches from its leader), on the shard's own executor: no thread
// of its own and no hop between threads. One request at a time; connects
// when a call needs it and again after a failure; a call that gets no
// answer within the timeout drops the connection (as Kafka clients do) and
// fails with timed_out. Not thread-safe: the shard's thread only.

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <flatbuffers/flatbuffers.h>

#include "schemas/body_pool.h"
#include "schemas/frame.h"
#include "schemas/frame_reader.h"
#include "schemas/protocol_generated.h"

namespace runnel::net {

using peer_response = schemas::response_frame;

class peer_client {
 public:
  peer_client(asio::any_io_executor ex, std::string host, std::uint16_t port, std::string client_id,
              std::chrono::milliseconds timeout);
  ~peer_client();
  peer_client(const peer_client&) = delete;             // owns a socket
  peer_client& operator=(const peer_client&) = delete;  // owns a socket

  // Sends the request whose body `fbb` holds at `body` (not yet finished)
  // and waits for its answer. Errors: the connect's or the socket's,
  // timed_out, operation_aborted after close(), a malformed or unmatched
  // answer (frame errors), operation_in_progress for a second call while
  // one runs. `payload` (record batches the body's PayloadRefs point
  // into) goes after the envelope; it must stay valid until the call ends.
  asio::awaitable<std::expected<peer_response, std::error_code>> call(flatbuffers::FlatBufferBuilder& fbb,
                                                                      wire::Request type,
                                                                      flatbuffers::Offset<void> body,
                                                                      std::span<const std::byte> payload = {});
  // Ends a call in progress and fails every later one.
  void close();

 private:
  asio::awaitable<std::expected<peer_response, std::error_code>> exchange(std::span<const std::byte> prefix,
                                                                          std::span<const std::byte> payload,
                                                                          std::uint32_t correlation_id);
  void drop();

  asio::any_io_executor ex_;
  std::string host_;
  std::uint16_t port_;
  std::string client_id_;
  std::chrono::milliseconds timeout_;
  asio::ip::tcp::socket socket_;
  std::optional<schemas::frame_reader<asio::ip::tcp::socket>> reader_;  // of the current connection
  // Replica fetch answers reuse their memory once they are appended.
  std::shared_ptr<schemas::body_pool> bodies_ = schemas::body_pool::make(32 << 20);
  std::uint32_t next_correlation_ = 1;
  std::uint64_t generation_ = 0;  // bumps when a connection is dropped
  bool connected_ = false;
  bool busy_ = false;
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed
};

}  // namespace runnel::net
