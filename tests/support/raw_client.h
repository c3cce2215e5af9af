#pragma once
// raw_client: a blocking TCP client speaking raw frames, for tests that send
// what the SDK never would (garbage, oversized frames, bad CRCs).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "schemas/frame.h"
#include "schemas/protocol_generated.h"

namespace runnel::testing {

struct raw_response {
  std::vector<std::byte> body;
  schemas::frame_head head;
  [[nodiscard]] const wire::ResponseEnvelope& envelope() const {
    return *flatbuffers::GetRoot<wire::ResponseEnvelope>(body.data());
  }
};

// A blocking TCP socket connected to 127.0.0.1:port, bound first to
// `source` (any 127.x.y.z) when given; -1 when the connect fails.
int connect_loopback(std::uint16_t port, const char* source = nullptr);

// A whole request frame: envelope around `body` (in `fbb`), then `payload`.
std::vector<std::byte> request_frame(flatbuffers::FlatBufferBuilder& fbb, wire::Request type,
                                     flatbuffers::Offset<void> body, std::span<const std::byte> payload = {},
                                     std::int16_t api_version = 1, std::uint32_t correlation_id = 1);

// A Produce frame carrying `records` for topic/partition.
std::vector<std::byte> produce_frame(const std::string& topic, std::int32_t partition, std::span<const std::byte> records,
                                     std::int8_t acks = 1, std::uint32_t correlation_id = 1);

class raw_client {
 public:
  explicit raw_client(std::uint16_t port);
  ~raw_client();
  raw_client(const raw_client&) = delete;             // owns a socket
  raw_client& operator=(const raw_client&) = delete;  // owns a socket
  raw_client(raw_client&&) = delete;                  // tests keep it on the stack
  raw_client& operator=(raw_client&&) = delete;       // tests keep it on the stack

  void send(std::span<const std::byte> bytes);
  // The next response frame, or nullopt when the broker closed the connection
  // (or nothing arrived within `timeout_ms`).
  std::optional<raw_response> read(int timeout_ms = 10'000);
  // True when the broker closed the connection (reads end-of-stream).
  bool closed_by_peer(int timeout_ms = 10'000);

 private:
  bool read_exact(std::byte* p, std::size_t n, int timeout_ms);
  int fd_ = -1;
};

}  // namespace runnel::testing
