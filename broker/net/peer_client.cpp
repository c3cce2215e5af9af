#include "broker/net/peer_client.h"

#include <array>

#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "schemas/frame.h"

namespace runnel::net {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t max_response_bytes = 1U << 30;
constexpr std::size_t read_buffer_bytes = 16 * 1024;  // small answers in one recv; large bodies read in place
}  // namespace

peer_client::peer_client(asio::any_io_executor ex, std::string host, std::uint16_t port, std::string client_id,
                         std::chrono::milliseconds timeout)
    : ex_(std::move(ex)),
      host_(std::move(host)),
      port_(port),
      client_id_(std::move(client_id)),
      timeout_(timeout),
      socket_(ex_) {}

peer_client::~peer_client() { *alive_ = false; }

void peer_client::close() {
  closed_ = true;
  drop();
}

void peer_client::drop() {
  std::error_code ignored;
  socket_.close(ignored);  // what waits on it ends with operation_aborted
  connected_ = false;
  ++generation_;  // the reader stays: a read in progress in it is ending; the next connect replaces it
}

asio::awaitable<std::expected<peer_response, std::error_code>> peer_client::call(flatbuffers::FlatBufferBuilder& fbb,
                                                                                 wire::Request type,
                                                                                 flatbuffers::Offset<void> body,
                                                                                 std::span<const std::byte> payload) {
  if (closed_) co_return std::unexpected(make_error_code(asio::error::operation_aborted));
  if (busy_) co_return std::unexpected(make_error_code(std::errc::operation_in_progress));
  busy_ = true;
  auto client_id = fbb.CreateString(client_id_);
  const std::uint32_t correlation_id = next_correlation_++;
  fbb.Finish(wire::CreateRequestEnvelope(fbb, 1, correlation_id, client_id, type, body));
  const auto prefix =
      schemas::encode_frame_prefix(std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize())), payload.size());
  // The deadline covers the connect, the write and the answer: when it
  // passes, the connection goes and what waits on it ends. (A handler that
  // was already due when the call ended may still run: `alive` and the
  // generation keep it harmless.)
  asio::steady_timer deadline(ex_);
  deadline.expires_after(timeout_);
  const std::uint64_t generation = generation_;
  deadline.async_wait([this, alive = alive_, generation](std::error_code ec) {
    if (!ec && *alive && generation == generation_) drop();
  });
  auto r = co_await exchange(prefix, payload, correlation_id);
  deadline.cancel();
  busy_ = false;
  if (!r) {
    if (generation != generation_ && !closed_) co_return std::unexpected(make_error_code(std::errc::timed_out));
    if (connected_) drop();  // a failed exchange leaves the connection in an unknown state
  }
  co_return r;
}

asio::awaitable<std::expected<peer_response, std::error_code>> peer_client::exchange(std::span<const std::byte> prefix,
                                                                                     std::span<const std::byte> payload,
                                                                                     std::uint32_t correlation_id) {
  if (!connected_) {
    asio::ip::tcp::resolver resolver(ex_);
    auto [rec, endpoints] = co_await resolver.async_resolve(host_, std::to_string(port_), use_tuple);
    if (rec) co_return std::unexpected(rec);
    if (closed_) co_return std::unexpected(make_error_code(asio::error::operation_aborted));
    auto [cec, ep] = co_await asio::async_connect(socket_, endpoints, use_tuple);
    if (cec) co_return std::unexpected(cec);
    if (closed_) co_return std::unexpected(make_error_code(asio::error::operation_aborted));
    std::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    connected_ = true;
    reader_.emplace(socket_, read_buffer_bytes);
  }
  const std::array<asio::const_buffer, 2> out{asio::buffer(prefix.data(), prefix.size()),
                                               asio::buffer(payload.data(), payload.size())};
  auto [wec, n] = co_await asio::async_write(socket_, out, use_tuple);
  if (wec) co_return std::unexpected(wec);
  auto head = co_await reader_->read_head(max_response_bytes);
  if (!head) co_return std::unexpected(head.error());
  auto body = bodies_->take(head->body_size());
  if (auto ec = co_await reader_->read_body(body.bytes)) co_return std::unexpected(ec);
  auto env = schemas::verify_response(body.bytes, *head);
  if (!env) co_return std::unexpected(env.error());
  if ((*env)->correlation_id() != correlation_id) {
    co_return std::unexpected(make_error_code(schemas::frame_errc::bad_envelope));
  }
  co_return peer_response{std::move(body.owner), *env, schemas::frame_payload(body.bytes, *head)};
}

}  // namespace runnel::net
