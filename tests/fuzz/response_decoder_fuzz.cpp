// Fuzz target for the client's response decoding: frame head and
// ResponseEnvelope verification as wire_client::read_loop does them
// (schemas/frame.h: verify_response, not the broker's verify_request), then
// the two bodies the client interprets beyond the Verifier: a Metadata
// answer (client/src/cluster_view.h: parse_metadata, merge, find_leader,
// route_by_leader) and a Fetch answer's record sets, walked the way
// consumer.cpp's decode() walks them (that loop is a member of the
// consumer's impl, so it is restated here).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "client/src/cluster_view.h"
#include "schemas/batch.h"
#include "schemas/frame.h"
#include "schemas/protocol_generated.h"

namespace {

using namespace runnel;

constexpr std::size_t max_response_bytes = 1U << 30;  // wire_client.cpp's limit

void metadata(const wire::MetadataResponse& m) {
  auto view = client::parse_metadata(m);
  if (!view) return;
  std::vector<topic_partition_ref> wanted;
  for (const auto& [name, parts] : view->topics) {
    const std::size_t n = parts ? parts->size() : 1;
    for (std::size_t p = 0; p <= n; ++p) {  // one past the end too
      wanted.push_back(topic_partition_ref{name, static_cast<std::int32_t>(p)});
      (void)client::find_leader(*view, name, static_cast<std::int32_t>(p));
    }
  }
  (void)client::route_by_leader(*view, wanted);
  client::cluster_view into;
  client::merge(into, std::move(*view));
}

void fetch(const wire::FetchResponse& resp, std::span<const std::byte> payload) {
  if (resp.topics() == nullptr) return;
  for (const auto* t : *resp.topics()) {
    if (t->name() == nullptr || t->partitions() == nullptr) continue;
    for (const auto* p : *t->partitions()) {
      const auto* ref = p->records();
      if (ref == nullptr || ref->length() == 0) continue;
      if (std::uint64_t{ref->offset()} + ref->length() > payload.size()) return;
      auto rest = payload.subspan(ref->offset(), ref->length());
      while (!rest.empty()) {
        auto h = schemas::decode_header(rest);
        if (!h || h->length > rest.size()) return;
        auto view = schemas::batch_view::open(rest.first(h->length), schemas::verify_limits{h->length});
        if (!view) return;
        for (std::size_t i = 0; i < view->record_count(); ++i) {
          auto rec = view->record(i);
          for (std::size_t k = 0; k < rec.header_count(); ++k) {
            (void)rec.header_key(k);
            (void)rec.header_value(k);
          }
        }
        (void)view->header().next_offset();
        rest = rest.subspan(h->length);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < schemas::frame_head_size) return 0;
  std::array<std::byte, schemas::frame_head_size> head_bytes{};
  std::memcpy(head_bytes.data(), data, head_bytes.size());
  auto head = schemas::decode_frame_head(head_bytes, max_response_bytes);
  if (!head) return 0;
  if (size - schemas::frame_head_size < head->body_size()) return 0;
  std::vector<std::byte> body(head->body_size());  // 8-aligned like the client's buffer
  std::memcpy(body.data(), data + schemas::frame_head_size, body.size());
  auto env = schemas::verify_response(body, *head);
  if (!env) return 0;
  if ((*env)->message() != nullptr) (void)(*env)->message()->str();
  if (const auto* m = (*env)->body_as_MetadataResponse()) metadata(*m);
  if (const auto* f = (*env)->body_as_FetchResponse()) fetch(*f, schemas::frame_payload(body, *head));
  return 0;
}
