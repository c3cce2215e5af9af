#include "tests/support/raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "schemas/assert.h"

namespace runnel::testing {

std::vector<std::byte> request_frame(flatbuffers::FlatBufferBuilder& fbb, wire::Request type,
                                     flatbuffers::Offset<void> body, std::span<const std::byte> payload,
                                     std::int16_t api_version, std::uint32_t correlation_id) {
  auto env = wire::CreateRequestEnvelope(fbb, api_version, correlation_id, fbb.CreateString("raw-test"), type, body);
  fbb.Finish(env);
  auto out = schemas::encode_frame_prefix(std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize())), payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<std::byte> produce_frame(const std::string& topic, std::int32_t partition, std::span<const std::byte> records,
                                     std::int8_t acks, std::uint32_t correlation_id) {
  flatbuffers::FlatBufferBuilder fbb;
  wire::PayloadRef ref(0, static_cast<std::uint32_t>(records.size()));
  std::vector<flatbuffers::Offset<wire::ProducePartition>> parts{wire::CreateProducePartition(fbb, partition, &ref)};
  std::vector<flatbuffers::Offset<wire::ProduceTopic>> topics{wire::CreateProduceTopicDirect(fbb, topic.c_str(), &parts)};
  auto body = wire::CreateProduceRequestDirect(fbb, acks, 30000, &topics);
  return request_frame(fbb, wire::Request::ProduceRequest, body.Union(), records, 1, correlation_id);
}

int connect_loopback(std::uint16_t port, const char* source) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (source != nullptr) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source, &src.sin_addr) != 1 || ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

raw_client::raw_client(std::uint16_t port) : fd_(connect_loopback(port)) {
  RUNNEL_ASSERT(fd_ >= 0, "connect to 127.0.0.1:{}", port);
}

raw_client::~raw_client() {
  if (fd_ >= 0) ::close(fd_);
}

void raw_client::send(std::span<const std::byte> bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;  // the broker may close on us; reads will tell
    done += static_cast<std::size_t>(n);
  }
}

bool raw_client::read_exact(std::byte* p, std::size_t n, int timeout_ms) {
  while (n > 0) {
    pollfd pf{fd_, POLLIN, 0};
    if (::poll(&pf, 1, timeout_ms) <= 0) return false;
    const ssize_t r = ::recv(fd_, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

std::optional<raw_response> raw_client::read(int timeout_ms) {
  std::array<std::byte, schemas::frame_head_size> head{};
  if (!read_exact(head.data(), head.size(), timeout_ms)) return std::nullopt;
  auto h = schemas::decode_frame_head(head, 1U << 30);
  RUNNEL_ASSERT(h.has_value(), "bad response frame head");
  raw_response r{std::vector<std::byte>(h->body_size()), *h};
  if (!read_exact(r.body.data(), r.body.size(), timeout_ms)) return std::nullopt;
  RUNNEL_ASSERT(schemas::verify_response(r.body, *h).has_value(), "response fails verification");
  return r;
}

bool raw_client::closed_by_peer(int timeout_ms) {
  pollfd pf{fd_, POLLIN, 0};
  if (::poll(&pf, 1, timeout_ms) <= 0) return false;
  std::byte b{};
  return ::recv(fd_, &b, 1, 0) <= 0;
}

}  // namespace runnel::testing
