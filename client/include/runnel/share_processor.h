#pragma once
// runnel::share_processor: runnel::processor's loop on a share group (a
// queue, ADR 0016). run(handler) polls and calls the handler once per
// record; what it answers becomes the record's acknowledgement:
//   done  -> accept: finished, never delivered again;
//   retry -> release after a backoff: any member of the group (this one
//            or another) gets it next, with delivery_count one higher,
//            while this member goes on with other records, so one failing
//            record holds up nothing behind it;
//   dead, or retry at delivery_count >= retry_policy::max_attempts
//         -> reject: archived, and copied by the broker to the group's
//            DLQ topic (share.dlq.topic) when it names one, exactly once
//            (docs/queues.md, "The DLQ rule").
// A thrown exception is a retry. The broker's own attempt limit
// (share.delivery.attempts.max) archives a record too, whichever is lower.
//
// The backoff (retry_policy's initial_backoff, multiplier, max_backoff,
// jitter, by the delivery count) is time the member keeps the record
// locked before releasing it; it is cut to half the group's
// share.record.lock.duration.ms so the release lands before the lock runs
// out. dlq_topic and the dlq_* settings of retry_policy do not apply: a
// share group's DLQ is the broker's.
//
// At least once: a record is accepted only after the handler returned
// done, and the acceptance is durable at the broker before the next poll
// is answered. A member that dies leaves its records locked until their
// locks expire; then another member gets them. Completion order is not
// offset order.
//
// One thread runs run(); stop() may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runnel/errors.h"
#include "runnel/processor.h"
#include "runnel/record.h"
#include "runnel/share_consumer.h"

namespace runnel {

struct share_processor_config {
  // group_id is required; explicit_acknowledgement is set (the processor
  // acknowledges each record itself).
  share_consumer_config consumer;
  std::vector<std::string> topics;
  retry_policy retry;
};

struct share_processor_stats {
  std::int64_t done = 0;      // accepted after the handler finished them
  std::int64_t released = 0;  // failures given back for another delivery
  std::int64_t rejected = 0;  // archived (dead, or out of attempts)
  // Acknowledgements the broker refused (a lock that expired first): the
  // record went to another delivery anyway.
  std::int64_t acknowledgement_errors = 0;
};

class share_processor {
 public:
  using handler = std::function<process_result(const record_view&)>;

  // Connects a share consumer and joins the group with cfg.topics.
  // invalid_argument: no group, no topics, max_attempts < 1, a bad jitter.
  static result<std::unique_ptr<share_processor>> connect(share_processor_config cfg);
  ~share_processor();
  share_processor(const share_processor&) = delete;             // owns its consumer
  share_processor& operator=(const share_processor&) = delete;  // owns its consumer
  share_processor(share_processor&&) = delete;                  // impl is referenced by run()
  share_processor& operator=(share_processor&&) = delete;       // impl is referenced by run()

  // Handles records until stop(); then releases what waits for a retry,
  // sends the last acknowledgements, leaves the group and returns. Fails
  // on a consumer error that is not transient.
  result<void> run(const handler& h);
  void stop();
  [[nodiscard]] share_processor_stats stats() const;

  struct impl;

 private:
  explicit share_processor(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel
