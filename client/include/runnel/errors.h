#pragma once
// Errors of the Runnel SDK: the broker's wire error codes (same numbers as
// docs/protocol.md) plus what can go wrong on the client side. Every
// failing call returns a runnel::error: a std::error_code in the "runnel"
// category and the broker's (or client's) message.

#include <expected>
#include <string>
#include <system_error>

namespace runnel {

enum class errc {
  // 1..38: wire error codes
  unknown = 1,
  corrupt_message = 2,
  unknown_topic_or_partition = 3,
  message_too_large = 4,
  offset_out_of_range = 5,
  not_leader = 6,
  request_timed_out = 7,
  topic_already_exists = 8,
  invalid_topic = 9,
  invalid_partitions = 10,
  invalid_replication_factor = 11,
  invalid_config = 12,
  invalid_request = 13,
  unsupported_version = 14,
  throttled = 15,
  storage_error = 16,
  not_enough_replicas = 17,
  broker_shutting_down = 18,
  fenced_leader_epoch = 19,
  coordinator_not_available = 20,
  not_coordinator = 21,
  coordinator_load_in_progress = 22,
  unknown_member_id = 23,
  fenced_member_epoch = 24,
  stale_member_epoch = 25,
  invalid_group_id = 26,
  group_id_not_found = 27,
  non_empty_group = 28,
  unreleased_instance_id = 29,
  invalid_regular_expression = 30,
  unsupported_assignor = 31,
  out_of_order_sequence = 32,  // idempotent producer: a sequence gap (the SDK bumps its epoch and resends)
  producer_fenced = 33,        // a newer epoch of this producer id wrote the partition
  unknown_producer_id = 34,    // the partition forgot the producer (the SDK bumps its epoch and resends)
  invalid_record = 35,         // a record the broker refuses (a runnel.msg.id over 256 bytes)
  storage_full = 36,           // the broker's disk is (nearly) full; retried with backoff until space is back
  invalid_record_state = 37,   // share groups: an acknowledgement of a record not acquired, expired or done
  inconsistent_group_type = 38,  // a consumer group's id used as a share group, or the other way round
  // client side
  connection_failed = 100,  // could not connect to a broker (at connect(): to any of the bootstrap list)
  disconnected,             // the connection dropped with the request in flight
  timed_out,                // no answer within the client's timeout
  bad_response,             // a response frame failed verification
  invalid_argument,         // the call's arguments are unusable
  closed,                   // the client was closed
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

// True for errors a retry may cure (back pressure, leadership moves, drops).
bool retriable(std::error_code ec) noexcept;

struct error {
  std::error_code code;
  std::string message;  // the broker's text when it sent one
  [[nodiscard]] std::string what() const { return message.empty() ? code.message() : code.message() + ": " + message; }
};

template <class T>
using result = std::expected<T, error>;

}  // namespace runnel

template <>
struct std::is_error_code_enum<runnel::errc> : std::true_type {};
