#include "client/src/wire_client.h"

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "schemas/frame_reader.h"

namespace runnel::client {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t max_response_bytes = 1U << 30;
constexpr std::size_t read_buffer_bytes = 16 * 1024;  // small responses in one recv; larger bodies read in place
constexpr std::size_t max_requests_per_write = 32;    // requests queued together go in one write
}  // namespace

error make_error(wire::ErrorCode code, const flatbuffers::String* message) {
  return error{make_error_code(static_cast<errc>(static_cast<int>(code))), message != nullptr ? message->str() : std::string()};
}

std::optional<error> envelope_error(const wire::ResponseEnvelope& env) {
  if (env.error() == wire::ErrorCode::NONE) return std::nullopt;
  return make_error(env.error(), env.message());
}

std::optional<error> request_error(const result<response>& r) {
  if (!r) return r.error();
  if (r->envelope == nullptr) return std::nullopt;
  return envelope_error(*r->envelope);
}

wire_client::wire_client(std::string host, std::uint16_t port, std::string client_id, std::chrono::milliseconds timeout)
    : host_(std::move(host)),
      port_(port),
      client_id_(std::move(client_id)),
      timeout_(timeout),
      own_io_(std::make_unique<asio::io_context>(1)),
      io_(*own_io_),
      guard_(io_.get_executor()),
      socket_(io_),
      writer_wakeup_(io_),
      connect_done_(io_) {
  thread_ = std::thread([this] { io_.run(); });
  io_thread_id_ = thread_.get_id();
  asio::co_spawn(io_, timeout_watch(), asio::detached);
}

wire_client::wire_client(asio::io_context& io, std::thread::id io_thread, std::string host, std::uint16_t port,
                         std::string client_id, std::chrono::milliseconds timeout)
    : host_(std::move(host)),
      port_(port),
      client_id_(std::move(client_id)),
      timeout_(timeout),
      io_(io),
      socket_(io_),
      writer_wakeup_(io_),
      connect_done_(io_),
      io_thread_id_(io_thread) {
  asio::co_spawn(io_, timeout_watch(), asio::detached);
}

wire_client::~wire_client() {
  if (!own_io_) return;  // shared: its owner closed us and ran the io_context to its end
  close();
  guard_.reset();
  thread_.join();
}

void wire_client::close() {
  asio::post(io_, [this] { do_close(); });
}

void wire_client::do_close() {
  stopping_ = true;
  std::error_code ec;
  socket_.close(ec);
  connected_ = false;
  fail_all(error{errc::closed, "client closed"});
}

result<void> wire_client::connect() {
  if (std::this_thread::get_id() == io_thread_id_) {
    return std::unexpected(error{errc::invalid_argument, "blocking connect from the client's I/O thread (a callback)"});
  }
  auto p = std::make_shared<std::promise<std::error_code>>();
  auto f = p->get_future();
  asio::co_spawn(io_, ensure_connected(), [p](std::exception_ptr, std::error_code ec) { p->set_value(ec); });
  if (f.wait_for(timeout_) != std::future_status::ready) {
    // An address that swallows the SYN: give up after the timeout.
    asio::post(io_, [this] {
      if (!connected_) {
        std::error_code ignored;
        socket_.close(ignored);
      }
    });
  }
  if (auto ec = f.get()) {
    return std::unexpected(error{errc::connection_failed, host_ + ":" + std::to_string(port_) + ": " + ec.message()});
  }
  return {};
}

void wire_client::call(flatbuffers::FlatBufferBuilder fbb, wire::Request type, flatbuffers::Offset<void> body,
                       std::vector<std::byte> payload, response_handler done, bool expect_response) {
  asio::post(io_, [this, fbb = std::move(fbb), type, body, payload = std::move(payload), done = std::move(done),
                   expect_response]() mutable {
    if (stopping_) {
      done(std::unexpected(error{errc::closed, "client closed"}));
      return;
    }
    auto client_id = fbb.CreateString(client_id_);
    const std::uint32_t correlation_id = next_correlation_++;
    auto env = wire::CreateRequestEnvelope(fbb, 1, correlation_id, client_id, type, body);
    fbb.Finish(env);
    auto prefix =
        schemas::encode_frame_prefix(std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize())), payload.size());
    to_send_.push_back(outgoing{correlation_id, std::move(prefix), std::move(payload), std::move(done), expect_response,
                                std::chrono::steady_clock::now() + timeout_});
    start_writer();
  });
}

result<response> wire_client::call_sync(flatbuffers::FlatBufferBuilder fbb, wire::Request type,
                                        flatbuffers::Offset<void> body, std::vector<std::byte> payload) {
  if (std::this_thread::get_id() == io_thread_id_) {
    // Waiting here would block the only thread that can answer.
    return std::unexpected(error{errc::invalid_argument, "blocking call from the client's I/O thread (a callback)"});
  }
  std::promise<result<response>> p;
  auto f = p.get_future();
  call(std::move(fbb), type, body, std::move(payload), [&p](result<response> r) { p.set_value(std::move(r)); });
  auto r = f.get();  // the timeout watch fails it after `timeout_`
  if (auto e = request_error(r)) return std::unexpected(*e);
  return r;
}

void wire_client::start_writer() {
  if (writer_running_) return;
  writer_running_ = true;
  asio::co_spawn(io_, write_loop(), asio::detached);
}

asio::awaitable<std::error_code> wire_client::ensure_connected() {
  if (connecting_) {
    // Another coroutine is connecting: its outcome is ours.
    while (connecting_) co_await connect_done_.async_wait(use_tuple);
    co_return connected_ ? std::error_code{} : connect_result_;
  }
  if (connected_) co_return std::error_code{};
  if (stopping_) co_return make_error_code(asio::error::operation_aborted);
  connecting_ = true;
  connect_done_.expires_at(asio::steady_timer::time_point::max());
  connect_result_ = co_await do_connect();
  connecting_ = false;
  connect_done_.cancel();
  co_return connect_result_;
}

asio::awaitable<std::error_code> wire_client::do_connect() {
  asio::ip::tcp::resolver resolver(io_);
  auto [rec, endpoints] = co_await resolver.async_resolve(host_, std::to_string(port_), use_tuple);
  if (stopping_) co_return make_error_code(asio::error::operation_aborted);
  if (rec) co_return rec;
  std::error_code ignored;
  socket_.close(ignored);
  auto [cec, ep] = co_await asio::async_connect(socket_, endpoints, use_tuple);
  if (stopping_) {
    socket_.close(ignored);
    co_return make_error_code(asio::error::operation_aborted);
  }
  if (cec) co_return cec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  connected_ = true;
  asio::co_spawn(io_, read_loop(++generation_), asio::detached);
  co_return std::error_code{};
}

asio::awaitable<void> wire_client::write_loop() {
  while (!to_send_.empty() && !stopping_) {
    if (auto ec = co_await ensure_connected()) {
      auto pending = std::exchange(to_send_, {});
      for (auto& o : pending) {
        o.done(std::unexpected(error{errc::connection_failed, host_ + ":" + std::to_string(port_) + ": " + ec.message()}));
      }
      break;
    }
    if (to_send_.empty() || stopping_) break;  // failed or closed while connecting
    // What is queued goes in one write (pipelined requests share a
    // syscall). Moving a request keeps its buffers where they are.
    std::vector<asio::const_buffer> bufs;
    std::vector<outgoing> unanswered;  // acks=0: done once written
    while (!to_send_.empty() && bufs.size() < 2 * max_requests_per_write) {
      outgoing o = std::move(to_send_.front());
      to_send_.pop_front();
      bufs.push_back(asio::buffer(o.prefix));
      if (!o.payload.empty()) bufs.push_back(asio::buffer(o.payload));
      // Queued before writing: the response may arrive before the write returns.
      if (o.expect_response) {
        in_flight_.push_back(std::move(o));
      } else {
        unanswered.push_back(std::move(o));
      }
    }
    auto [ec, n] = co_await asio::async_write(socket_, bufs, use_tuple);
    if (ec) {
      for (auto& o : unanswered) o.done(std::unexpected(error{errc::disconnected, ec.message()}));
      std::error_code ignored;
      socket_.close(ignored);
      connected_ = false;
      auto lost = std::exchange(in_flight_, {});
      for (auto& l : lost) l.done(std::unexpected(error{errc::disconnected, ec.message()}));
      continue;
    }
    for (auto& o : unanswered) o.done(result<response>(std::in_place));
  }
  writer_running_ = false;
}

asio::awaitable<void> wire_client::read_loop(std::uint64_t generation) {
  schemas::frame_reader reader(socket_, read_buffer_bytes);
  while (generation == generation_ && connected_) {
    auto head = co_await reader.read_head(max_response_bytes);
    error failure{errc::disconnected, ""};
    if (head) {
      auto body = bodies_->take(head->body_size());
      if (auto ec = co_await reader.read_body(body.bytes); !ec) {
        auto env = schemas::verify_response(body.bytes, *head);
        if (env && !in_flight_.empty() && (*env)->correlation_id() == in_flight_.front().correlation_id) {
          auto o = std::move(in_flight_.front());
          in_flight_.pop_front();
          o.done(response{std::move(body.owner), *env, schemas::frame_payload(body.bytes, *head)});
          continue;
        }
        failure = error{errc::bad_response, env ? "response does not match the oldest request" : env.error().message()};
      } else {
        failure.message = ec.message();
      }
    } else if (head.error().category() == schemas::frame_category()) {
      failure = error{errc::bad_response, head.error().message()};
    } else {
      failure.message = head.error().message();
    }
    if (generation != generation_) co_return;  // a newer connection took over
    std::error_code ignored;
    socket_.close(ignored);
    connected_ = false;
    auto lost = std::exchange(in_flight_, {});
    for (auto& l : lost) l.done(std::unexpected(failure));
    co_return;
  }
}

asio::awaitable<void> wire_client::timeout_watch() {
  asio::steady_timer t(io_);
  while (!stopping_) {
    t.expires_after(std::chrono::milliseconds(50));
    co_await t.async_wait(use_tuple);
    if (stopping_) co_return;
    const auto now = std::chrono::steady_clock::now();
    if (!connected_ && !to_send_.empty() && to_send_.front().deadline < now) {
      // Still connecting past the request timeout: abort the connect; the
      // writer fails what waits with connection_failed.
      std::error_code ignored;
      socket_.close(ignored);
    }
    if (!in_flight_.empty() && in_flight_.front().deadline < now) {
      // The connection is no longer trustworthy: drop it (as Kafka clients do).
      std::error_code ignored;
      socket_.close(ignored);
      connected_ = false;
      ++generation_;
      auto lost = std::exchange(in_flight_, {});
      for (auto& l : lost) l.done(std::unexpected(error{errc::timed_out, "no response within the request timeout"}));
    }
  }
}

void wire_client::fail_all(const error& e) {
  auto a = std::exchange(to_send_, {});
  auto b = std::exchange(in_flight_, {});
  for (auto& o : a) o.done(std::unexpected(e));
  for (auto& o : b) o.done(std::unexpected(e));
}

}  // namespace runnel::client
