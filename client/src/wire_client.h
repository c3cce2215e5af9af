#pragma once
// wire_client: one connection to one broker, driven by its own I/O thread
// or by a shared one (connection_pool runs all of a client's connections on
// one thread). Requests may be issued from any thread; they are sent in
// issue order and their responses matched in that order (the broker answers
// in order). Connects lazily and again after a drop; a request in flight
// when the connection drops fails with errc::disconnected.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <flatbuffers/flatbuffers.h>

#include "client/src/address.h"
#include "runnel/errors.h"
#include "schemas/body_pool.h"
#include "schemas/frame.h"
#include "schemas/protocol_generated.h"

namespace runnel::client {

using response = schemas::response_frame;

using response_handler = std::move_only_function<void(result<response>)>;

class wire_client {
 public:
  // Runs its own I/O thread.
  wire_client(std::string host, std::uint16_t port, std::string client_id, std::chrono::milliseconds timeout);
  // Runs on `io`, which its owner runs on the one thread `io_thread` and
  // lets run until every connection on it is close()d. Destroy it only
  // after that thread has ended.
  wire_client(asio::io_context& io, std::thread::id io_thread, std::string host, std::uint16_t port,
              std::string client_id, std::chrono::milliseconds timeout);
  ~wire_client();  // with its own thread: close(), then joins it
  wire_client(const wire_client&) = delete;             // owns a socket (and maybe a thread)
  wire_client& operator=(const wire_client&) = delete;  // owns a socket (and maybe a thread)
  wire_client(wire_client&&) = delete;                  // its coroutines hold `this`
  wire_client& operator=(wire_client&&) = delete;       // its coroutines hold `this`

  // Connects now (the first request would otherwise); gives up after the
  // timeout. Not from the I/O thread.
  result<void> connect();

  // Drops the connection and fails every request, queued or in flight, and
  // every later one, with errc::closed. Any thread; asynchronous.
  void close();

  // Sends a request whose body `fbb` holds at `body` (not yet finished),
  // with `payload` after the envelope. `done` runs on the I/O thread; with
  // expect_response false (acks=0) it runs once the bytes are written.
  void call(flatbuffers::FlatBufferBuilder fbb, wire::Request type, flatbuffers::Offset<void> body,
            std::vector<std::byte> payload, response_handler done, bool expect_response = true);

  // call() and wait; errors in the envelope come back as errors.
  result<response> call_sync(flatbuffers::FlatBufferBuilder fbb, wire::Request type, flatbuffers::Offset<void> body,
                             std::vector<std::byte> payload = {});

  [[nodiscard]] asio::io_context& io() { return io_; }
  [[nodiscard]] std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  struct outgoing {
    std::uint32_t correlation_id = 0;
    std::vector<std::byte> prefix;
    std::vector<std::byte> payload;
    response_handler done;
    bool expect_response;
    std::chrono::steady_clock::time_point deadline;
  };
  void start_writer();
  asio::awaitable<void> write_loop();
  asio::awaitable<void> read_loop(std::uint64_t generation);
  asio::awaitable<std::error_code> ensure_connected();
  asio::awaitable<std::error_code> do_connect();
  void do_close();
  void fail_all(const error& e);
  asio::awaitable<void> timeout_watch();

  std::string host_;
  std::uint16_t port_;
  std::string client_id_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<asio::io_context> own_io_;  // null on a shared io_context
  asio::io_context& io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;  // own io_context only
  asio::ip::tcp::socket socket_;
  asio::steady_timer writer_wakeup_;
  asio::steady_timer connect_done_;  // waiters for a connect in progress; cancelled when it ends
  std::deque<outgoing> to_send_;    // I/O thread only
  std::deque<outgoing> in_flight_;  // sent, response pending; I/O thread only
  // Fetch answers reuse their memory once the records in them are dropped.
  std::shared_ptr<schemas::body_pool> bodies_ = schemas::body_pool::make(64 << 20);
  std::uint32_t next_correlation_ = 1;
  std::uint64_t generation_ = 0;  // bumps on every (re)connect
  bool connected_ = false;
  bool connecting_ = false;          // one connect at a time; others wait on connect_done_
  std::error_code connect_result_;   // of the last connect, for those that waited
  bool writer_running_ = false;
  bool stopping_ = false;
  std::thread thread_;  // own io_context only
  std::thread::id io_thread_id_;
};

// Maps an envelope-level error to a runnel::error (NONE -> nullopt).
std::optional<error> envelope_error(const wire::ResponseEnvelope& env);
// What failed a whole request: the call itself, or its envelope's error
// (nullopt: a response with no envelope, as acks=0 produce gets).
std::optional<error> request_error(const result<response>& r);
error make_error(wire::ErrorCode code, const flatbuffers::String* message);

}  // namespace runnel::client
