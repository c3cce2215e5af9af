#include "runnel/errors.h"

namespace runnel {

namespace {

class category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "runnel"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unknown: return "unknown broker error";
      case errc::corrupt_message: return "corrupt message";
      case errc::unknown_topic_or_partition: return "unknown topic or partition";
      case errc::message_too_large: return "message too large";
      case errc::offset_out_of_range: return "offset out of range";
      case errc::not_leader: return "not the partition leader";
      case errc::request_timed_out: return "request timed out on the broker";
      case errc::topic_already_exists: return "topic already exists";
      case errc::invalid_topic: return "invalid topic";
      case errc::invalid_partitions: return "invalid partitions";
      case errc::invalid_replication_factor: return "invalid replication factor";
      case errc::invalid_config: return "invalid config";
      case errc::invalid_request: return "invalid request";
      case errc::unsupported_version: return "unsupported version";
      case errc::throttled: return "throttled";
      case errc::storage_error: return "storage error";
      case errc::not_enough_replicas: return "not enough replicas";
      case errc::broker_shutting_down: return "broker shutting down";
      case errc::fenced_leader_epoch: return "fenced leader epoch";
      case errc::coordinator_not_available: return "group coordinator not available";
      case errc::not_coordinator: return "not the group's coordinator";
      case errc::coordinator_load_in_progress: return "group coordinator loading";
      case errc::unknown_member_id: return "unknown group member";
      case errc::fenced_member_epoch: return "fenced member epoch";
      case errc::stale_member_epoch: return "stale member epoch";
      case errc::invalid_group_id: return "invalid group id";
      case errc::group_id_not_found: return "group not found";
      case errc::non_empty_group: return "group is not empty";
      case errc::unreleased_instance_id: return "group instance id in use";
      case errc::invalid_regular_expression: return "invalid regular expression";
      case errc::unsupported_assignor: return "unsupported assignor";
      case errc::out_of_order_sequence: return "out of order sequence number";
      case errc::producer_fenced: return "producer fenced";
      case errc::unknown_producer_id: return "unknown producer id";
      case errc::invalid_record: return "invalid record";
      case errc::storage_full: return "storage full";
      case errc::invalid_record_state: return "invalid record state";
      case errc::inconsistent_group_type: return "group is of another type";
      case errc::connection_failed: return "connection failed";
      case errc::disconnected: return "disconnected";
      case errc::timed_out: return "timed out";
      case errc::bad_response: return "bad response";
      case errc::invalid_argument: return "invalid argument";
      case errc::closed: return "client closed";
    }
    return "unknown error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category c;
  return c;
}

bool retriable(std::error_code ec) noexcept {
  if (ec.category() != error_category()) return false;
  switch (static_cast<errc>(ec.value())) {
    case errc::throttled:
    case errc::not_leader:
    case errc::fenced_leader_epoch:
    case errc::request_timed_out:
    case errc::disconnected:
    case errc::timed_out:
    case errc::broker_shutting_down:
    case errc::not_enough_replicas:
    case errc::connection_failed:
    case errc::coordinator_not_available:
    case errc::not_coordinator:
    case errc::coordinator_load_in_progress:
    case errc::storage_full:
      return true;
    default:
      return false;
  }
}

}  // namespace runnel
