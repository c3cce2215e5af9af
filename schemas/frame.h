#pragma once
// Frames of the wire protocol (protocol.fbs has the grammar):
//
//   @0 length           u32 LE  bytes after this field
//   @4 envelope_length  u32 LE  bytes of the FlatBuffers envelope
//   @8 envelope, zero padding to a multiple of 8, payload (record batches)
//
// A reader takes the 8-byte head first, checks it against its limit before
// allocating anything, then reads `length - 4` body bytes into an 8-aligned
// buffer: the envelope starts at body[0] and the payload at
// body[payload_start(envelope_length)], 8-aligned for the batches in it.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace runnel::wire {
struct RequestEnvelope;
struct ResponseEnvelope;
}  // namespace runnel::wire

namespace runnel::schemas {

inline constexpr std::size_t frame_head_size = 8;

struct frame_head {
  std::uint32_t length = 0;           // bytes after the length field
  std::uint32_t envelope_length = 0;  // bytes of the envelope
  // Bytes still to read after the 8-byte head.
  [[nodiscard]] std::size_t body_size() const { return length - 4U; }
};

// Errors in frames are connection-fatal: the stream can no longer be trusted.
enum class frame_errc {
  frame_too_large = 1,  // length over the reader's limit (checked before allocating)
  bad_frame_length,     // length too small for the envelope it announces
  bad_envelope,         // the envelope fails the FlatBuffers Verifier
};
const std::error_category& frame_category() noexcept;
inline std::error_code make_error_code(frame_errc e) noexcept { return {static_cast<int>(e), frame_category()}; }

[[nodiscard]] std::expected<frame_head, std::error_code> decode_frame_head(std::span<const std::byte, frame_head_size> head,
                                                                         std::size_t max_frame_bytes);

// Offset of the payload within the body (the bytes after the 8-byte head).
[[nodiscard]] constexpr std::size_t payload_start(std::uint32_t envelope_length) {
  return ((frame_head_size + envelope_length + 7U) & ~std::size_t{7}) - frame_head_size;
}

// Head + envelope + padding for a frame whose payload (`payload_bytes`) the
// caller sends right after, from memory or from files.
[[nodiscard]] std::vector<std::byte> encode_frame_prefix(std::span<const std::byte> envelope, std::size_t payload_bytes);

// Runs the Verifier over the envelope at the start of `body`; the returned
// pointer aliases `body`.
[[nodiscard]] std::expected<const wire::RequestEnvelope*, std::error_code> verify_request(std::span<const std::byte> body,
                                                                                       const frame_head& head);
[[nodiscard]] std::expected<const wire::ResponseEnvelope*, std::error_code> verify_response(std::span<const std::byte> body,
                                                                                         const frame_head& head);

// The payload of a verified frame; empty when the frame has none.
[[nodiscard]] std::span<const std::byte> frame_payload(std::span<const std::byte> body, const frame_head& head);

// A response frame as a client (the SDK's, or a broker's peer_client) holds
// it: the body, and the verified envelope and payload inside it.
struct response_frame {
  std::shared_ptr<const void> body;  // keeps `envelope` and `payload` valid (a body_pool's block)
  const wire::ResponseEnvelope* envelope = nullptr;
  std::span<const std::byte> payload;
};

}  // namespace runnel::schemas

template <>
struct std::is_error_code_enum<runnel::schemas::frame_errc> : std::true_type {};
