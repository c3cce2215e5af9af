#pragma once
// runnel::processor: a consumer group's processing loop with retries and a
// dead-letter queue (docs/delivery.md, "The dead-letter queue").
//
// run(handler) polls the subscribed topics and calls the handler once per
// record. The handler answers done, retry (a transient failure: called
// again after an exponential backoff with jitter) or dead (a permanent
// failure); a thrown exception counts as retry with its what(). A record
// that is still failing after retry_policy::max_attempts calls, or that is
// dead, is written to its topic's dead-letter topic (`<topic>.dlq` unless
// the policy names one): same partition number, original key, value and
// headers, plus failure headers (dlq_header below). That topic is created
// on first use with the source's partition count, replication factor and
// min.insync.replicas, and a message-id window (dedup.window.ms).
//
// Records behind a failing one keep flowing: while a record waits for its
// next attempt, later records of other keys are handled; records with its
// key wait behind it, so the order per key of the records that succeed is
// kept (records without a key are not ordered against each other).
//
// Never lost, never doubled. The committed offset of a partition never
// passes a record that is not done: it is the lowest offset still being
// retried, waiting behind its key, or on its way to the DLQ. The DLQ write
// is acks=all through an idempotent producer and carries
// runnel.msg.id = "group/topic/partition/offset", so a processor that dies
// after the DLQ write and before the commit handles the record again after
// restart, fails it again, and the DLQ topic's window drops the second copy.
//
// One thread runs run(); stop() may be called from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/consumer.h"
#include "runnel/errors.h"
#include "runnel/producer.h"
#include "runnel/record.h"

namespace runnel {

enum class process_status {
  done,   // processed: the record is finished
  retry,  // a transient failure: call again after a backoff (until max_attempts)
  dead,   // a permanent failure: straight to the DLQ
};

struct process_result {
  process_status status = process_status::done;
  std::string error;  // why it failed; goes into the DLQ record's runnel.dlq.error

  static process_result ok() { return {}; }
  static process_result retry_later(std::string why) { return {process_status::retry, std::move(why)}; }
  static process_result permanent(std::string why) { return {process_status::dead, std::move(why)}; }
};

struct retry_policy {
  int max_attempts = 5;  // handler calls before a retrying record goes to the DLQ (1: no retry)
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30'000};
  double multiplier = 2.0;
  double jitter = 0.2;  // each wait is drawn from [w * (1 - jitter), w * (1 + jitter)]
  // The DLQ topic of every source topic (empty: "<topic>.dlq").
  std::string dlq_topic;
  // dedup.window.ms of a DLQ topic the processor creates: how long after
  // a DLQ write a restarted processor's repeat of it is still dropped.
  std::chrono::milliseconds dlq_dedup_window{std::chrono::hours(24 * 7)};
  // Refuse (run() fails with invalid_config) a DLQ topic that exists
  // without a message-id window, since it could hold a record twice.
  bool require_dlq_dedup_window = true;
};

// The failure headers of a DLQ record (values are decimal text, times in
// milliseconds since the epoch). runnel.msg.id is replaced by the DLQ
// record's own id; a source record's id is kept in original_msg_id.
namespace dlq_header {
inline constexpr std::string_view topic = "runnel.dlq.topic";
inline constexpr std::string_view partition = "runnel.dlq.partition";
inline constexpr std::string_view offset = "runnel.dlq.offset";
inline constexpr std::string_view timestamp = "runnel.dlq.timestamp";
inline constexpr std::string_view group = "runnel.dlq.group";
inline constexpr std::string_view error = "runnel.dlq.error";
inline constexpr std::string_view attempts = "runnel.dlq.attempts";
inline constexpr std::string_view first_failure = "runnel.dlq.first.failure.ms";
inline constexpr std::string_view last_failure = "runnel.dlq.last.failure.ms";
inline constexpr std::string_view original_msg_id = "runnel.dlq.original.msg.id";
inline constexpr std::string_view prefix = "runnel.dlq.";
}  // namespace dlq_header

// The DLQ copy of a record, as on_dead_letter sees it.
struct dead_letter {
  std::string dlq_topic;
  std::int32_t partition = 0;
  std::int64_t dlq_offset = -1;
  bool duplicate = false;  // the DLQ already held it (a repeat after a restart)
  int attempts = 0;
  std::string error;
};

struct processor_stats {
  std::int64_t done = 0;           // records the handler finished
  std::int64_t retries = 0;        // handler calls after a first failure
  std::int64_t dead_lettered = 0;  // DLQ writes acknowledged (duplicates included)
  std::int64_t dlq_duplicates = 0; // of those, the ones the DLQ's window already held
};

struct processor_config {
  // group_id is required; enable_auto_commit is ignored (the processor
  // commits what is done, every commit_interval and when it stops).
  consumer_config consumer;
  std::vector<std::string> topics;
  retry_policy retry;
  std::chrono::milliseconds commit_interval{1'000};
  // Records of one partition held for retries or behind a failing key;
  // at the bound its further records are left unread (fetched again once
  // some finish), so one stuck partition cannot fill memory.
  std::size_t max_pending_per_partition = 10'000;
  // Runs on run()'s thread when a DLQ write was acknowledged, before the
  // record's offset can be committed.
  std::function<void(const record_view& original, const dead_letter& copy)> on_dead_letter;
};

class processor {
 public:
  using handler = std::function<process_result(const record_view&)>;

  // Connects a consumer (subscribed to cfg.topics), the DLQ's producer
  // and an admin client. invalid_argument: no group, no topics, or a
  // group and topic whose DLQ message id would be over 256 bytes.
  static result<std::unique_ptr<processor>> connect(processor_config cfg);
  ~processor();
  processor(const processor&) = delete;             // owns its clients
  processor& operator=(const processor&) = delete;  // owns its clients
  processor(processor&&) = delete;                  // callbacks hold `this`
  processor& operator=(processor&&) = delete;       // callbacks hold `this`

  // Handles records until stop(); then commits what is done, leaves the
  // group and returns. Fails on what no retry cures: a DLQ topic that
  // cannot be created or is unfit, a consumer error that is not transient.
  result<void> run(const handler& h);
  void stop();
  [[nodiscard]] processor_stats stats() const;

  struct impl;

 private:
  explicit processor(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

// "group/topic/partition/offset": the DLQ record's runnel.msg.id.
std::string dlq_msg_id(std::string_view group, std::string_view topic, std::int32_t partition, std::int64_t offset);

}  // namespace runnel
