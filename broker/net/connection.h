#pragma once
// connection: one client socket on one shard. The read loop takes frames
// (length checked before allocating, envelope verified), starts a handler
// coroutine per request (many in flight) and queues a slot per request; the
// write loop sends the slots strictly in request order, record bytes
// straight from segment files with sendfile(2). A malformed frame closes
// this connection only.
//
// Bounds: max.inflight.requests.per.connection (the read loop stops
// reading: TCP pushes back), in-flight produce bytes per connection and
// per broker (past them: THROTTLED with throttle_ms), connections.max.idle.ms,
// request bodies that grow as their bytes arrive, counted in the broker's
// queued.max.request.bytes (past it: reading waits), and
// request.read.timeout.ms for a frame started and not finished.

#include <chrono>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "broker/net/context.h"
#include "schemas/frame.h"

namespace runnel::net {

class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(broker_state& b, shard& home, asio::ip::tcp::socket socket);

  // Serves until the peer leaves, a malformed frame, idle timeout or drain().
  asio::awaitable<void> run();
  // Stops reading; requests already read are answered, then the socket closes.
  void drain();
  // Last resort at shutdown: closes the socket now (pending I/O fails).
  void force_close();

 private:
  struct slot {
    bool ready = false;
    bool silent = false;  // acks=0: nothing to send
    std::vector<std::byte> prefix;
    std::vector<storage::file_range> files;
  };

  asio::awaitable<void> read_loop();
  asio::awaitable<void> write_loop();
  asio::awaitable<void> idle_watch();
  // A request's bytes, allocated without zero-filling: the socket fills
  // them, and pages of a body still arriving are not touched before.
  struct request_body {
    std::unique_ptr<std::byte[]> data;
    std::size_t size = 0;
    [[nodiscard]] std::span<std::byte> bytes() const { return {data.get(), size}; }
  };

  asio::awaitable<void> handle(std::shared_ptr<slot> s, request_body body, schemas::frame_head head,
                               std::uint64_t produce_bytes);
  asio::awaitable<bool> send_file(const storage::file_range& r);
  void finish(slot& s, flatbuffers::FlatBufferBuilder& fbb, std::uint32_t correlation_id, const handler_result& r,
              std::int32_t throttle_ms);
  void wake_writer() { writer_wakeup_.cancel(); }

  broker_state& broker_;
  shard& home_;
  asio::ip::tcp::socket socket_;
  std::deque<std::shared_ptr<slot>> queue_;
  asio::steady_timer writer_wakeup_;
  asio::steady_timer reader_wakeup_;
  asio::steady_timer idle_timer_;  // idle_watch's tick; cancelled at close
  std::uint64_t inflight_produce_bytes_ = 0;
  std::uint64_t inflight_request_bytes_ = 0;  // every request body read and not yet answered
  std::chrono::steady_clock::time_point last_activity_;
  std::chrono::steady_clock::time_point frame_started_;  // when reading_frame_: its head's arrival
  bool reading_frame_ = false;  // a body is being read (request.read.timeout.ms applies)
  bool draining_ = false;
  std::string peer_host_;  // the client's address, for group member descriptions
  bool reading_done_ = false;
  bool writer_finished_ = false;
  bool closed_ = false;
};

}  // namespace runnel::net
