#include "broker/group/errc.h"

namespace runnel::group {

namespace {

class category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "runnel.group"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::coordinator_not_available: return "group coordinator not available";
      case errc::not_coordinator: return "not the group's coordinator";
      case errc::load_in_progress: return "group coordinator loading";
      case errc::unknown_member: return "unknown group member";
      case errc::fenced_member_epoch: return "fenced member epoch";
      case errc::stale_member_epoch: return "stale member epoch";
      case errc::invalid_group_id: return "invalid group id";
      case errc::group_not_found: return "group not found";
      case errc::non_empty_group: return "group is not empty";
      case errc::unreleased_instance_id: return "group instance id in use";
      case errc::invalid_regex: return "invalid regular expression";
      case errc::unsupported_assignor: return "unsupported assignor";
      case errc::unknown_topic_or_partition: return "unknown topic or partition";
      case errc::invalid_request: return "invalid request";
      case errc::invalid_record_state: return "invalid record state";
      case errc::inconsistent_group_type: return "group is of another type";
      case errc::invalid_config: return "invalid group config";
      case errc::not_leader: return "not the partition's leader";
      case errc::fenced_leader_epoch: return "fenced leader epoch";
    }
    return "unknown group error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category c;
  return c;
}

}  // namespace runnel::group
