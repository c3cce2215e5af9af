#include "client/src/metadata_cache.h"

namespace runnel::client {

result<std::int32_t> metadata_cache::partitions(const std::string& topic) {
  {
    std::lock_guard lock(mu_);
    if (auto it = counts_.find(topic); it != counts_.end()) return it->second;
  }
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<std::string> names{topic};
  auto body = wire::CreateMetadataRequest(fbb, fbb.CreateVectorOfStrings(names));
  auto r = wire_.call_sync(std::move(fbb), wire::Request::MetadataRequest, body.Union());
  if (!r) return std::unexpected(r.error());
  const auto* m = r->envelope->body_as_MetadataResponse();
  if (m == nullptr || m->topics() == nullptr || m->topics()->size() != 1) {
    return std::unexpected(error{errc::bad_response, "Metadata"});
  }
  const auto* t = m->topics()->Get(0);
  if (t->error() != wire::ErrorCode::NONE) {
    return std::unexpected(error{make_error_code(static_cast<errc>(static_cast<int>(t->error()))), "topic " + topic});
  }
  const auto n = static_cast<std::int32_t>(t->partitions() != nullptr ? t->partitions()->size() : 0);
  if (n == 0) return std::unexpected(error{errc::unknown_topic_or_partition, "topic " + topic + " has no partitions"});
  std::lock_guard lock(mu_);
  counts_[topic] = n;
  return n;
}

void metadata_cache::forget(const std::string& topic) {
  std::lock_guard lock(mu_);
  counts_.erase(topic);
}

}  // namespace runnel::client
