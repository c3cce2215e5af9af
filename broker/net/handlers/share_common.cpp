#include "broker/net/handlers/share_common.h"

#include <fmt/format.h>

#include "broker/net/groups.h"

namespace runnel::net::handlers {

share_request parse_share_request(const request_context& ctx, const flatbuffers::String& group_id,
                                  const flatbuffers::String& member,
                                  const flatbuffers::Vector<flatbuffers::Offset<wire::ShareFetchTopic>>* topics) {
  share_request out;
  out.group_id = group_id.str();
  out.member = member.str();
  if (auto e = check_group_id(out.group_id)) {
    out.refusal = {to_wire(e->code), e->message};
  } else if (out.member.empty()) {
    out.refusal = {wire::ErrorCode::INVALID_REQUEST, "member_id is empty"};
  }
  if (topics == nullptr) return out;
  for (const auto* t : *topics) {
    const meta::topic* topic = find_topic(ctx, t->name()->string_view());
    if (t->partitions() != nullptr) {
      for (const auto* p : *t->partitions()) {
        share_request_partition part;
        part.topic_index = out.topic_names.size();
        part.partition = p->partition();
        const bool known = topic != nullptr && p->partition() >= 0 && p->partition() < topic->partitions;
        part.topic = known ? topic : nullptr;
        if (p->acknowledgements() != nullptr) {
          for (const auto* a : *p->acknowledgements()) {
            if (a->kind() < 1 || a->kind() > 3) {
              part.bad_ack = fmt::format("acknowledgement kind {} (1 accept, 2 release, 3 reject)", a->kind());
              break;
            }
            part.acks.push_back({offset(a->first_offset()), offset(a->last_offset()),
                                 static_cast<group::ack_kind>(a->kind())});
          }
        }
        out.parts.push_back(std::move(part));
      }
    }
    out.topic_names.push_back(t->name()->str());
  }
  return out;
}

}  // namespace runnel::net::handlers
