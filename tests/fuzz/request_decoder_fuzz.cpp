// Fuzz target for the broker's request decoding: frame head, envelope
// verification, and the record sets of a Produce (batch headers, CRC,
// FlatBuffers records) exactly as the broker checks them before appending.
//
// Two ways to run it:
//  - libFuzzer: LLVMFuzzerTestOneInput below, built with clang
//    -fsanitize=fuzzer (needs a clang whose libstdc++ mode has
//    std::expected, clang >= 16; Debian 12's clang 14 lacks it, ADR 0005);
//  - request_decoder_fuzz_driver (tests/fuzz/driver.cpp): a bounded,
//    seeded mutation run over valid frames of every API, built with GCC and
//    run by ctest, also under ASan+UBSan.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "schemas/batch.h"
#include "schemas/frame.h"
#include "schemas/protocol_generated.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace runnel;
  if (size < schemas::frame_head_size) return 0;
  std::array<std::byte, schemas::frame_head_size> head_bytes{};
  std::memcpy(head_bytes.data(), data, head_bytes.size());
  auto head = schemas::decode_frame_head(head_bytes, 1U << 20);
  if (!head) return 0;
  if (size - schemas::frame_head_size < head->body_size()) return 0;
  std::vector<std::byte> body(head->body_size());  // aligned like the broker's buffer
  std::memcpy(body.data(), data + schemas::frame_head_size, body.size());
  auto env = schemas::verify_request(body, *head);
  if (!env) return 0;
  const auto* req = (*env)->body_as_ProduceRequest();
  if (req == nullptr || req->topics() == nullptr) return 0;
  auto payload = schemas::frame_payload(body, *head);
  for (const auto* t : *req->topics()) {
    if (t->partitions() == nullptr) continue;
    for (const auto* p : *t->partitions()) {
      const auto* ref = p->records();
      if (std::uint64_t{ref->offset()} + ref->length() > payload.size()) continue;
      auto set = payload.subspan(ref->offset(), ref->length());
      while (!set.empty()) {
        auto h = schemas::decode_header(set);
        if (!h || h->length > set.size()) break;
        auto v = schemas::batch_view::open(set.first(h->length), schemas::verify_limits{1U << 20});
        if (!v) break;
        for (std::size_t i = 0; i < v->record_count(); ++i) {
          auto r = v->record(i);
          for (std::size_t k = 0; k < r.header_count(); ++k) (void)r.header_key(k);
        }
        set = set.subspan(h->length);
      }
    }
  }
  return 0;
}
