#pragma once
// What ShareFetch and ShareAcknowledge share: the partitions a request
// names, each with its acknowledgements, checked against the topics.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/net/handlers/handlers.h"
#include "broker/net/share_partitions.h"

namespace runnel::net::handlers {

struct share_request_partition {
  std::size_t topic_index = 0;  // in share_request::topic_names
  std::int32_t partition = 0;
  const meta::topic* topic = nullptr;  // nullptr: unknown topic or partition
  std::vector<share_ack> acks;
  std::string bad_ack;  // non-empty: an acknowledgement the request got wrong (INVALID_REQUEST)
};

struct share_request {
  std::string group_id;
  std::string member;
  // The request as a whole is refused: a bad group id, no member id.
  std::optional<std::pair<wire::ErrorCode, std::string>> refusal;
  std::vector<std::string> topic_names;
  std::vector<share_request_partition> parts;
};

// The topic pointers point into ctx.home's topics snapshot: the caller keeps it.
share_request parse_share_request(const request_context& ctx, const flatbuffers::String& group_id,
                                  const flatbuffers::String& member,
                                  const flatbuffers::Vector<flatbuffers::Offset<wire::ShareFetchTopic>>* topics);

}  // namespace runnel::net::handlers
