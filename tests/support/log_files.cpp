#include "tests/support/log_files.h"

#include <algorithm>

#include "broker/storage/segment.h"
#include "schemas/batch.h"
#include "tests/support/batches.h"

namespace runnel::testing {

std::vector<segment_on_disk> segments_on_disk(const std::filesystem::path& dir) {
  std::vector<segment_on_disk> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (auto base = storage::parse_segment_name(e.path())) out.push_back({*base, e.path()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.base < b.base; });
  return out;
}

std::optional<durable_point> find_offset_on_disk(const std::filesystem::path& dir, offset off) {
  auto segs = segments_on_disk(dir);
  for (std::size_t i = segs.size(); i-- > 0;) {
    if (segs[i].base > off) continue;
    auto bytes = read_file(segs[i].log);
    std::uint64_t pos = 0;
    offset at = segs[i].base;
    while (at < off) {
      auto h = schemas::decode_header(std::span<const std::byte>(bytes).subspan(pos));
      if (!h || h->base_offset != at || pos + h->length > bytes.size()) return std::nullopt;
      pos += h->length;
      at = h->next_offset();
    }
    if (at != off) return std::nullopt;
    return durable_point{segs[i].log, pos, i};
  }
  return std::nullopt;
}

std::vector<schemas::batch_header> batches_on_disk(const std::filesystem::path& dir) {
  std::vector<schemas::batch_header> out;
  for (const auto& seg : segments_on_disk(dir)) {
    auto bytes = read_file(seg.log);
    for (std::uint64_t pos = 0; pos < bytes.size();) {
      auto h = schemas::decode_header(std::span<const std::byte>(bytes).subspan(pos));
      if (!h || pos + h->length > bytes.size()) break;
      out.push_back(*h);
      pos += h->length;
    }
  }
  return out;
}

}  // namespace runnel::testing
