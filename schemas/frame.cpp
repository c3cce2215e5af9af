#include "schemas/frame.h"

#include <cstring>
#include <string>

#include <flatbuffers/flatbuffers.h>

#include "schemas/protocol_generated.h"

namespace runnel::schemas {

namespace {

class frame_category_impl final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "runnel.frame"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<frame_errc>(ev)) {
      case frame_errc::frame_too_large: return "frame larger than max.request.bytes";
      case frame_errc::bad_frame_length: return "frame length too small for its envelope";
      case frame_errc::bad_envelope: return "frame envelope fails FlatBuffers verification";
    }
    return "unknown frame error";
  }
};

std::uint32_t load_u32(const std::byte* p) {
  std::uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);  // the protocol is little endian, like the hosts we build for
  return v;
}

flatbuffers::Verifier::Options verifier_options(std::size_t size) {
  flatbuffers::Verifier::Options o;
  o.max_depth = 16;
  o.max_tables = size / 4 + 16;  // cannot reference more tables than it has bytes for
  return o;
}

}  // namespace

const std::error_category& frame_category() noexcept {
  static const frame_category_impl category;
  return category;
}

std::expected<frame_head, std::error_code> decode_frame_head(std::span<const std::byte, frame_head_size> head,
                                                             std::size_t max_frame_bytes) {
  frame_head h{load_u32(head.data()), load_u32(head.data() + 4)};
  if (h.length > max_frame_bytes) return std::unexpected(frame_errc::frame_too_large);
  if (h.length < 4 || h.envelope_length == 0 || h.envelope_length > h.length - 4U) {
    return std::unexpected(frame_errc::bad_frame_length);
  }
  if (payload_start(h.envelope_length) > h.body_size()) return std::unexpected(frame_errc::bad_frame_length);
  return h;
}

std::vector<std::byte> encode_frame_prefix(std::span<const std::byte> envelope, std::size_t payload_bytes) {
  const std::size_t start = payload_start(static_cast<std::uint32_t>(envelope.size()));
  std::vector<std::byte> out(frame_head_size + start);
  const auto length = static_cast<std::uint32_t>(4 + start + payload_bytes);
  const auto env_len = static_cast<std::uint32_t>(envelope.size());
  std::memcpy(out.data(), &length, 4);
  std::memcpy(out.data() + 4, &env_len, 4);
  std::memcpy(out.data() + frame_head_size, envelope.data(), envelope.size());
  return out;
}

std::expected<const wire::RequestEnvelope*, std::error_code> verify_request(std::span<const std::byte> body,
                                                                         const frame_head& head) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(body.data());
  flatbuffers::Verifier v(p, head.envelope_length, verifier_options(head.envelope_length));
  if (!v.VerifyBuffer<wire::RequestEnvelope>(nullptr)) return std::unexpected(frame_errc::bad_envelope);
  return flatbuffers::GetRoot<wire::RequestEnvelope>(p);
}

std::expected<const wire::ResponseEnvelope*, std::error_code> verify_response(std::span<const std::byte> body,
                                                                           const frame_head& head) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(body.data());
  flatbuffers::Verifier v(p, head.envelope_length, verifier_options(head.envelope_length));
  if (!v.VerifyBuffer<wire::ResponseEnvelope>(nullptr)) return std::unexpected(frame_errc::bad_envelope);
  return flatbuffers::GetRoot<wire::ResponseEnvelope>(p);
}

std::span<const std::byte> frame_payload(std::span<const std::byte> body, const frame_head& head) {
  return body.subspan(payload_start(head.envelope_length));
}

}  // namespace runnel::schemas
