#pragma once
// runnel::producer: sends records to topic partitions.
//
// The partition of a keyed record is Kafka's: murmur2(key) % partitions;
// records without a key stick to one partition until its batch is sent
// (sticky partitioning), choosing a partition with nothing in flight when
// there is one. Records are batched per partition until batch_bytes or
// linger; each batch goes to its partition's leader, one Produce request per
// leader broker carrying its ready batches. One batch per partition is in
// flight at a time (order); a batch whose linger passed while its
// partition's previous batch is still in flight stays open and keeps
// filling until that answer comes (so linger 0 batches under load, as
// Kafka's producer does). Retriable
// failures (throttled, disconnected, not leader, fenced epoch, unknown
// partition) are retried with exponential backoff and jitter until
// delivery_timeout; those that say the leader may have moved fetch the
// topic's metadata again first, and keep looking (every retry_backoff)
// while they back off: a batch goes to its partition's new leader as soon
// as the metadata names it, not when its backoff for the old one ends
// (a kill -9 of a leader costs writers the session timeout plus about
// half a second; docs/reliability.md). After `breaker_failures` consecutive failed
// requests to a broker the producer stops sending to it for `breaker_open`
// (circuit breaker), failing nothing early: records wait.
//
// Idempotence (enable_idempotence, on by default with acks=all, as in
// Kafka 3.x): the producer gets an id and epoch (InitProducerId) and
// stamps every batch with a per-partition sequence when it first sends
// it; a retry of a batch that already landed is answered with the first
// copy's offsets, so retries write no duplicates. A sequence gap (a batch
// that failed for good did not land) or a partition that forgot the
// producer makes it bump its epoch and send again from sequence 0.
// With max_in_flight_per_partition > 1 a partition's batches are
// pipelined; a failed one makes its partition wait for the rest to come
// back, then all go again in their order (a refusal behind an older batch
// that has not landed yet is not a gap).
//
// Thread-safe: send() from any thread. Callbacks run on the producer's I/O
// thread and must not block.

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/errors.h"
#include "runnel/record.h"

namespace runnel {

struct delivery {
  std::int32_t partition = 0;
  std::int64_t offset = -1;
  std::int64_t timestamp_ms = -1;  // the broker's append time
  bool fsynced = false;            // acks=all: on disk when acknowledged
  // The topic's message-id window (dedup.window.ms) held this record's
  // runnel.msg.id: not written again; `offset` is the first copy's.
  bool duplicate = false;
};

// The record header that names a message for the broker's dedup window.
inline constexpr std::string_view msg_id_header = "runnel.msg.id";

using partitioner_fn = std::function<std::int32_t(std::string_view topic, std::optional<std::string_view> key,
                                                  std::int32_t partitions)>;

struct producer_config {
  std::string bootstrap = "127.0.0.1:9292";  // host:port[,host:port...]: the first that answers
  std::string client_id = "runnel-producer";
  int acks = 1;  // 0, 1 or -1 (all: fsynced before the reply)
  // Idempotent producer (docs/delivery.md): unset = on exactly when
  // acks = -1; true with another acks is a configuration error.
  std::optional<bool> enable_idempotence;
  // Batches of one partition on the wire at once, with idempotence (1-5;
  // without it always 1): the sequences keep the order across retries.
  // 1 by default: 5 measured 25 % slower on W2 with acks=all here
  // (docs/performance.md), since each request then carries fewer batches.
  int max_in_flight_per_partition = 1;
  std::chrono::milliseconds linger{5};
  std::size_t batch_bytes = 256 * 1024;
  int max_in_flight = 5;  // requests in flight per broker connection
  std::chrono::milliseconds retry_backoff{100};
  std::chrono::milliseconds retry_backoff_max{2'000};
  std::chrono::milliseconds delivery_timeout{120'000};
  std::chrono::milliseconds request_timeout{30'000};
  // Records buffered and not yet delivered (or failed), in bytes of key,
  // value and headers plus 64 per record: past it send() waits up to
  // max_block for space, then fails the record with timed_out (at once
  // when called from a delivery callback, which runs on the I/O thread).
  std::size_t buffer_memory = 32ULL << 20;  // buffer.memory
  // Also bounds send()'s Metadata lookup of a topic it has not seen yet
  // (then timed_out naming Metadata; the answer still fills the cache).
  std::chrono::milliseconds max_block{60'000};  // max.block.ms
  int breaker_failures = 5;
  std::chrono::milliseconds breaker_open{1'000};
  partitioner_fn partitioner;  // empty: Kafka-compatible default
  // A message id for records sent without a runnel.msg.id header (nullopt:
  // none); at most 256 bytes (longer: INVALID_RECORD).
  std::function<std::optional<std::string>(std::string_view topic, std::optional<std::string_view> key,
                                           std::string_view value)>
      msg_id_of;
};

class producer {
 public:
  using callback = std::function<void(const result<delivery>&)>;

  static result<std::unique_ptr<producer>> connect(producer_config cfg);
  ~producer();  // close()
  producer(const producer&) = delete;             // owns its connections
  producer& operator=(const producer&) = delete;  // owns its connections
  producer(producer&&) = delete;                  // the I/O thread holds `this`
  producer& operator=(producer&&) = delete;       // the I/O thread holds `this`

  void send(std::string_view topic, std::optional<std::string_view> key, std::string_view value,
            const std::vector<header>& headers, callback cb);
  std::future<result<delivery>> send(std::string_view topic, std::optional<std::string_view> key,
                                     std::string_view value, const std::vector<header>& headers = {});
  // Sends to an explicit partition.
  void send_to(std::string_view topic, std::int32_t partition, std::optional<std::string_view> key,
               std::string_view value, const std::vector<header>& headers, callback cb);
  std::future<result<delivery>> send_to(std::string_view topic, std::int32_t partition,
                                        std::optional<std::string_view> key, std::string_view value,
                                        const std::vector<header>& headers = {});

  // send() with a runnel.msg.id header: on a topic with a message-id
  // window (dedup.window.ms), a second record with the same id within the
  // window is not written; its delivery has `duplicate` and the first
  // copy's offset.
  std::future<result<delivery>> send_with_id(std::string_view topic, std::optional<std::string_view> key,
                                             std::string_view value, std::string_view msg_id,
                                             std::vector<header> headers = {});

  // Sends everything buffered and waits for every outstanding delivery.
  result<void> flush(std::chrono::milliseconds timeout = std::chrono::minutes(2));
  // flush(), then stops sending. Later sends fail with errc::closed.
  void close();

  struct impl;

 private:
  explicit producer(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel
