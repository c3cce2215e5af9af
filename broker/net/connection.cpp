#include "broker/net/connection.h"

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cstring>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/read.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>

#include "broker/net/logger.h"
#include "broker/storage/segment.h"
#include "schemas/frame_reader.h"
#include "schemas/protocol_generated.h"

namespace runnel::net {

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::int32_t throttle_retry_ms = 100;
constexpr std::size_t read_buffer_bytes = 16 * 1024;  // per connection: small requests in one recv
constexpr std::size_t max_answers_per_write = 64;      // iovecs of one write
// A request body up to this size is allocated whole (not zero-filled, so
// nothing is resident before its bytes arrive); a larger one starts at
// first_body_step and doubles as its bytes arrive, so a peer announcing a
// frame near max.request.bytes and sending little holds little.
constexpr std::size_t whole_body_bytes = 8 << 20;
constexpr std::size_t first_body_step = 64 * 1024;

std::string peer_of(const asio::ip::tcp::socket& s) {
  std::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string("?") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

connection::connection(broker_state& b, shard& home, asio::ip::tcp::socket socket)
    : broker_(b),
      home_(home),
      socket_(std::move(socket)),
      writer_wakeup_(socket_.get_executor()),
      reader_wakeup_(socket_.get_executor()),
      idle_timer_(socket_.get_executor()),
      last_activity_(std::chrono::steady_clock::now()) {
  std::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) peer_host_ = ep.address().to_string();
}

asio::awaitable<void> connection::run() {
  auto self = shared_from_this();
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.native_non_blocking(true, ec);  // sendfile must not block the shard
  const std::string peer = peer_of(socket_);
  logger().debug("shard {}: connection from {}", home_.id(), peer);
  if (broker_.cfg.idle_timeout.count() > 0 || broker_.cfg.request_read_timeout.count() > 0) {
    asio::co_spawn(socket_.get_executor(), idle_watch(), asio::detached);
  }
  // The writer outlives the reader: requests already read get answered.
  auto writer_done = std::make_shared<asio::steady_timer>(socket_.get_executor(), asio::steady_timer::time_point::max());
  asio::co_spawn(socket_.get_executor(), write_loop(), [this, self, writer_done](std::exception_ptr) {
    writer_finished_ = true;  // a cancel with nobody waiting would be lost
    writer_done->cancel();
  });
  co_await read_loop();
  reading_done_ = true;
  wake_writer();
  if (!writer_finished_) co_await writer_done->async_wait(use_tuple);
  closed_ = true;
  socket_.close(ec);
  reader_wakeup_.cancel();
  idle_timer_.cancel();  // so a stopping shard need not wait for its next tick
  logger().debug("shard {}: connection from {} closed", home_.id(), peer);
}

void connection::force_close() {
  std::error_code ec;
  socket_.close(ec);
  reader_wakeup_.cancel();
  writer_wakeup_.cancel();
}

void connection::drain() {
  if (closed_ || reading_done_) return;
  draining_ = true;
  // The pending read returns end-of-stream; the writer finishes the queue.
  ::shutdown(socket_.native_handle(), SHUT_RD);
  reader_wakeup_.cancel();
}

asio::awaitable<void> connection::idle_watch() {
  auto self = shared_from_this();
  const auto& cfg = broker_.cfg;
  std::chrono::milliseconds tick{1000};
  if (cfg.idle_timeout.count() > 0) tick = std::min(tick, cfg.idle_timeout);
  if (cfg.request_read_timeout.count() > 0) tick = std::min(tick, cfg.request_read_timeout);
  while (!closed_) {
    idle_timer_.expires_after(tick);
    co_await idle_timer_.async_wait(use_tuple);
    if (closed_ || reading_done_) co_return;
    const auto now = std::chrono::steady_clock::now();
    if (cfg.request_read_timeout.count() > 0 && reading_frame_ && now - frame_started_ > cfg.request_read_timeout) {
      logger().warn("shard {}: closing connection from {}: a frame not complete after {} ms (request.read.timeout.ms)",
                    home_.id(), peer_of(socket_), cfg.request_read_timeout.count());
      drain();
      co_return;
    }
    if (cfg.idle_timeout.count() > 0 && queue_.empty() && now - last_activity_ > cfg.idle_timeout) {
      logger().info("shard {}: closing connection from {} idle for {} ms", home_.id(), peer_of(socket_),
                    broker_.cfg.idle_timeout.count());
      drain();
      co_return;
    }
  }
}

asio::awaitable<void> connection::read_loop() {
  auto self = shared_from_this();
  const std::size_t max_inflight = broker_.cfg.max_inflight_requests_per_connection;
  schemas::frame_reader reader(socket_, read_buffer_bytes);
  while (true) {
    // Back pressure by not reading: too many requests, or too many request
    // bytes (of any API), in flight on this connection.
    while (queue_.size() >= max_inflight ||
           (!queue_.empty() && inflight_request_bytes_ >= broker_.cfg.max_inflight_produce_bytes_per_connection)) {
      reader_wakeup_.expires_at(asio::steady_timer::time_point::max());
      co_await reader_wakeup_.async_wait(use_tuple);
      if (closed_ || writer_finished_ || broker_.stopping.load(std::memory_order_relaxed)) co_return;
    }
    auto head = co_await reader.read_head(broker_.cfg.max_request_bytes);
    if (!head) {
      // The peer left, drain, idle timeout, or a malformed head.
      if (head.error().category() == schemas::frame_category()) {
        logger().warn("shard {}: closing connection from {}: {}", home_.id(), peer_of(socket_), head.error().message());
      }
      co_return;
    }
    last_activity_ = std::chrono::steady_clock::now();
    // Admission: the whole announced body counts in the broker's
    // queued.max.request.bytes before any of it is read; past the bound
    // reading waits, except on a connection holding no request (so one
    // request per connection, and every replica fetch, always proceeds).
    // Counting it whole means bodies being read never wait on each other.
    const std::size_t want = head->body_size();
    while (!queue_.empty() &&
           broker_.request_bytes.load(std::memory_order_relaxed) >= broker_.cfg.queued_max_request_bytes) {
      reader_wakeup_.expires_after(std::chrono::milliseconds(5));
      co_await reader_wakeup_.async_wait(use_tuple);
      if (draining_ || closed_ || broker_.stopping.load(std::memory_order_relaxed)) co_return;
    }
    broker_.request_bytes.fetch_add(want, std::memory_order_relaxed);
    auto give_back = [&] { broker_.request_bytes.fetch_sub(want, std::memory_order_relaxed); };
    request_body body;
    frame_started_ = std::chrono::steady_clock::now();
    reading_frame_ = true;
    std::size_t capacity = want <= whole_body_bytes ? want : first_body_step;
    while (body.size < want) {
      try {
        // The first allocation, or (a large body) the next doubling.
        auto grown = std::make_unique_for_overwrite<std::byte[]>(capacity);
        if (body.size > 0) std::memcpy(grown.get(), body.data.get(), body.size);
        body.data = std::move(grown);
      } catch (const std::bad_alloc&) {
        logger().error("shard {}: closing connection from {}: out of memory for a {} byte request", home_.id(),
                       peer_of(socket_), want);
        reading_frame_ = false;
        give_back();
        co_return;
      }
      const std::size_t got = body.size;
      if (auto ec = co_await reader.read_body(std::span(body.data.get() + got, capacity - got))) {
        reading_frame_ = false;
        give_back();
        co_return;
      }
      body.size = capacity;
      capacity = std::min(want, 2 * capacity);
    }
    reading_frame_ = false;
    auto env = schemas::verify_request(body.bytes(), *head);
    if (!env) {
      logger().warn("shard {}: closing connection from {}: {}", home_.id(), peer_of(socket_), env.error().message());
      give_back();
      co_return;
    }
    std::uint64_t produce_bytes = 0;
    if ((*env)->body_type() == wire::Request::ProduceRequest) produce_bytes = body.size;
    auto s = std::make_shared<slot>();
    queue_.push_back(s);
    inflight_request_bytes_ += body.size;
    asio::co_spawn(socket_.get_executor(), handle(s, std::move(body), *head, produce_bytes), asio::detached);
  }
}

asio::awaitable<void> connection::handle(std::shared_ptr<slot> s, request_body body, schemas::frame_head head,
                                         std::uint64_t produce_bytes) {
  auto self = shared_from_this();
  const auto* env = flatbuffers::GetRoot<wire::RequestEnvelope>(body.data.get());
  flatbuffers::FlatBufferBuilder fbb(1024);
  // acks=0: the client expects no answer at all, not even a refusal.
  const auto* as_produce = env->body_as_ProduceRequest();
  const bool never_answer = as_produce != nullptr && as_produce->acks() == 0;
  handler_result result;
  std::int32_t throttle_ms = 0;

  // Back pressure: always admit one produce per connection, so a single
  // request larger than the bound still makes progress.
  bool admitted = false;
  if (produce_bytes > 0) {
    const auto limit_conn = broker_.cfg.max_inflight_produce_bytes_per_connection;
    const auto limit_all = broker_.cfg.max_inflight_produce_bytes;
    const auto all = broker_.inflight_produce_bytes.load(std::memory_order_relaxed);
    if (inflight_produce_bytes_ > 0 && (inflight_produce_bytes_ + produce_bytes > limit_conn || all + produce_bytes > limit_all)) {
      result.error = wire::ErrorCode::THROTTLED;
      result.message = "too many produce bytes in flight; retry after throttle_ms";
      throttle_ms = throttle_retry_ms;
    } else {
      admitted = true;
      inflight_produce_bytes_ += produce_bytes;
      broker_.inflight_produce_bytes.fetch_add(produce_bytes, std::memory_order_relaxed);
    }
  }

  if (result.error == wire::ErrorCode::NONE) {
    handler_fn fn = find_handler(env->body_type());
    if (env->api_version() != 1) {
      result.error = wire::ErrorCode::UNSUPPORTED_VERSION;
      result.message = fmt::format("api version {} not supported (this broker speaks 1)", env->api_version());
    } else if (fn == nullptr) {
      result.error = wire::ErrorCode::UNSUPPORTED_VERSION;
      result.message = fmt::format("unknown api key {}", static_cast<int>(env->body_type()));
    } else if (env->body() == nullptr) {
      result.error = wire::ErrorCode::INVALID_REQUEST;
      result.message = "request without a body";
    } else {
      auto payload = body.bytes().subspan(schemas::payload_start(head.envelope_length));
      request_context ctx{broker_, home_, *env, payload, fbb, s->files, peer_host_};
      try {
        result = co_await fn(ctx);
      } catch (const std::exception& e) {
        logger().error("shard {}: {} failed: {}", home_.id(), wire::EnumNameRequest(env->body_type()), e.what());
        result = handler_result{};
        result.error = wire::ErrorCode::UNKNOWN;
        result.message = e.what();
        s->files.clear();
      }
    }
  }
  if (admitted) {
    inflight_produce_bytes_ -= produce_bytes;
    broker_.inflight_produce_bytes.fetch_sub(produce_bytes, std::memory_order_relaxed);
  }
  if (const auto delay = broker_.response_delay_ms.load(std::memory_order_relaxed); delay > 0) {
    asio::steady_timer t(socket_.get_executor(), std::chrono::milliseconds(delay));
    co_await t.async_wait(use_tuple);
  }
  inflight_request_bytes_ -= body.size;
  broker_.request_bytes.fetch_sub(body.size, std::memory_order_relaxed);
  if (result.no_response || never_answer) {
    s->silent = true;
  } else {
    finish(*s, fbb, env->correlation_id(), result, throttle_ms);
  }
  s->ready = true;
  wake_writer();
}

void connection::finish(slot& s, flatbuffers::FlatBufferBuilder& fbb, std::uint32_t correlation_id,
                        const handler_result& r, std::int32_t throttle_ms) {
  auto message = r.message.empty() ? flatbuffers::Offset<flatbuffers::String>() : fbb.CreateString(r.message);
  const bool failed = r.error != wire::ErrorCode::NONE;
  auto env = wire::CreateResponseEnvelope(fbb, correlation_id, r.error, message, throttle_ms,
                                          failed ? wire::Response::NONE : r.type,
                                          failed ? flatbuffers::Offset<void>() : r.body);
  fbb.Finish(env);
  std::size_t payload = 0;
  for (const auto& f : s.files) payload += f.length;
  s.prefix = schemas::encode_frame_prefix(std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize())), payload);
}

asio::awaitable<void> connection::write_loop() {
  auto self = shared_from_this();
  std::vector<std::shared_ptr<slot>> batch;
  std::vector<asio::const_buffer> prefixes;
  while (true) {
    if (!queue_.empty() && queue_.front()->ready) {
      // The answers ready in order go out in one write: pipelined small
      // answers share a syscall. A slot with file ranges ends the batch
      // (its records follow by sendfile).
      batch.clear();
      prefixes.clear();
      while (!queue_.empty() && queue_.front()->ready && prefixes.size() < max_answers_per_write) {
        auto s = std::move(queue_.front());
        queue_.pop_front();
        if (s->silent) continue;
        prefixes.push_back(asio::buffer(s->prefix));
        const bool has_files = !s->files.empty();
        batch.push_back(std::move(s));
        if (has_files) break;
      }
      reader_wakeup_.cancel();
      if (batch.empty()) continue;
      auto [ec, n] = co_await asio::async_write(socket_, prefixes, use_tuple);
      if (ec) break;
      bool ok = true;
      for (const auto& f : batch.back()->files) {
        if (!(ok = co_await send_file(f))) break;
      }
      if (!ok) break;
      last_activity_ = std::chrono::steady_clock::now();
      continue;
    }
    if (reading_done_ && queue_.empty()) break;
    writer_wakeup_.expires_at(asio::steady_timer::time_point::max());
    co_await writer_wakeup_.async_wait(use_tuple);
  }
  // A write failed or everything is answered: stop the reader too.
  writer_finished_ = true;
  reader_wakeup_.cancel();
  std::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  // Handlers still running finish into slots nobody sends; they hold `self`.
}

asio::awaitable<bool> connection::send_file(const storage::file_range& r) {
  off_t pos = static_cast<off_t>(r.pos.value());
  std::size_t left = r.length;
  while (left > 0) {
    const ssize_t n = ::sendfile(socket_.native_handle(), r.file->fd(), &pos, left);
    if (n > 0) {
      left -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_write, use_tuple);
      if (ec) co_return false;
      continue;
    }
    // n == 0: the file ended early (cannot happen for a range the log
    // returned); anything else is a socket error. Either way the frame is
    // broken, so the connection ends.
    if (n == 0) logger().error("sendfile: segment at {} ended {} bytes early", r.pos.value(), left);
    co_return false;
  }
  co_return true;
}

}  // namespace runnel::net
